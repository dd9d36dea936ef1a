package control

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// A control endpoint in an image started by an in-place upgrade takes
// the listener handed over instead of binding, and answers a client that
// connected before it listened (the connection waited in the backlog):
// circusctl is never refused across an upgrade. Not parallel: the
// inherited table is the process's.
func TestListenInherited(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			endpoint, address := "", ""
			if network == "tcp" {
				address = "127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
				endpoint = "tcp://" + address
			} else {
				address = filepath.Join(t.TempDir(), "c.sock")
				endpoint = "ipc://" + address
			}
			key := "zmq " + endpoint
			fd, addr := testproc.HandedOver(t, key, network, address)
			nc, err := net.DialTimeout(network, addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			handover.Inherit(map[string]int{key: fd})
			defer handover.Inherit(nil)

			s := serveAt(t, endpoint)
			if u := handover.Unclaimed(); len(u) != 0 {
				t.Errorf("Unclaimed() = %v, want the endpoint's listener taken", u)
			}
			nc.SetDeadline(time.Now().Add(5 * time.Second))
			zc, err := zmq4.Open(nc, null.Security(), zmq4.Dealer, zmq4.SocketIdentity(randomHex()), false, nil)
			if err != nil {
				t.Fatalf("handshake on the connection made before Listen: %v", err)
			}
			nc.SetDeadline(time.Time{})
			p := &rawPeer{t: t, nc: nc, zc: zc}
			p.send([]byte(`{"id": "1", "command": "list"}`))
			if r := p.recv(); !bytes.Contains(r[0], []byte(`"status": "ok"`)) {
				t.Errorf("list = %s, want ok", r[0])
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			if network == "unix" {
				if _, err := os.Lstat(address); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("after Close, Lstat(%s) = %v, want it removed", address, err)
				}
			}
		})
	}
}

// serveAt starts a Server at endpoint; the test closes it.
func serveAt(t *testing.T, endpoint string) *Server {
	t.Helper()
	s, err := Listen(endpoint, newTestHandler(), ServerOptions{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
