package zmqendpoint

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// An endpoint in an image started by an in-place upgrade takes the
// listener handed over under "zmq " + the endpoint: the same address, the
// connection waiting in its backlog accepted, and an ipc file that is
// neither probed nor replaced, then removed as a bound one's would be
// (on Close, or by RemoveFile with KeepFile). Not parallel: the inherited
// table is the process's.
func TestListenInherited(t *testing.T) {
	for _, tc := range []struct {
		name, network string
		keep          bool
	}{{"tcp", "tcp", false}, {"ipc", "unix", false}, {"ipc keep", "unix", true}} {
		t.Run(tc.name, func(t *testing.T) {
			address := filepath.Join(t.TempDir(), "e.sock")
			endpoint := "ipc://" + address
			if tc.network == "tcp" {
				address = "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
				endpoint = "tcp://" + address
			}
			fd, addr := testproc.HandedOver(t, "zmq "+endpoint, tc.network, address)
			c, err := net.DialTimeout(tc.network, addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			handover.Inherit(map[string]int{"zmq " + endpoint: fd})
			defer handover.Inherit(nil)

			o := testOpts
			o.KeepFile = tc.keep
			e, err := Listen(endpoint, o)
			if err != nil {
				t.Fatalf("Listen(%q) = %v", endpoint, err)
			}
			if e.Addr != strings.Replace(endpoint, address, addr, 1) {
				t.Errorf("Addr = %q, want %q", e.Addr, endpoint)
			}
			if handover.Inherited("zmq " + endpoint) {
				t.Errorf("the inherited listener was not taken")
			}
			nc, err := e.Listener.Accept()
			if err != nil {
				t.Fatalf("Accept = %v", err)
			}
			nc.Close()
			e.Listener.Close()
			if tc.network == "tcp" {
				return
			}
			_, err = os.Lstat(address)
			if gone := errors.Is(err, fs.ErrNotExist); gone == tc.keep {
				t.Errorf("after Close with KeepFile %v, Lstat(%s) = %v", tc.keep, address, err)
			}
			if err := e.RemoveFile(); err != nil {
				t.Errorf("RemoveFile() = %v", err)
			}
			if _, err := os.Lstat(address); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after RemoveFile, Lstat(%s) = %v, want it removed", address, err)
			}
		})
	}
}

// A listener handed over that is not what the endpoint says is refused,
// naming the endpoint and the key.
func TestListenInheritedWrongFamily(t *testing.T) {
	endpoint := "tcp://127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	fd, _ := testproc.HandedOver(t, "zmq "+endpoint, "unix", filepath.Join(t.TempDir(), "u.sock"))
	handover.Inherit(map[string]int{"zmq " + endpoint: fd})
	defer handover.Inherit(nil)
	e, err := Listen(endpoint, testOpts)
	if err == nil {
		e.Listener.Close()
		t.Fatalf("Listen(%q) took a unix listener", endpoint)
	}
	want := `test endpoint "` + endpoint + `": inherited listener "zmq ` + endpoint + `" (fd `
	if !strings.HasPrefix(err.Error(), want) || !strings.HasSuffix(err.Error(), "a AF_UNIX SOCK_STREAM socket, not a tcp listener") {
		t.Errorf("Listen = %v, want %s...", err, want)
	}
	unix.Close(fd) // refused, so left open
}
