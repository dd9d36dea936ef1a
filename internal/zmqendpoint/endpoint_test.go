package zmqendpoint

import (
	"errors"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testOpts = Options{Name: "test", Refusal: "say why", Mode: 0o600}

func TestListenTCP(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		endpoint    string
		allowRemote bool
		wantErr     string // "" for success
	}{
		{"tcp://127.0.0.1:0", false, ""},
		{"tcp://localhost:0", false, ""},
		{"tcp://[::1]:0", false, ""},
		{"tcp://*:0", true, ""},
		{"tcp://0.0.0.0:0", false, `test endpoint "tcp://0.0.0.0:0" is not loopback: say why`},
		{"tcp://*:0", false, `test endpoint "tcp://*:0" is not loopback: say why`},
		{"tcp://192.0.2.1:5556", false, `test endpoint "tcp://192.0.2.1:5556" is not loopback: say why`},
		{"tcp://127.0.0.1", false, `test endpoint "tcp://127.0.0.1": `},
		{"udp://127.0.0.1:1", false, `test endpoint "udp://127.0.0.1:1": want tcp://host:port or ipc:///path`},
		{"ipc://", false, `test endpoint "ipc://": empty path`},
	} {
		o := testOpts
		o.AllowRemote = tc.allowRemote
		e, err := Listen(tc.endpoint, o)
		if tc.wantErr == "" {
			if err != nil {
				if strings.Contains(tc.endpoint, "::1") {
					continue // no IPv6 loopback here
				}
				t.Errorf("Listen(%q) = %v", tc.endpoint, err)
				continue
			}
			if !strings.HasPrefix(e.Addr, "tcp://") || strings.HasSuffix(e.Addr, ":0") || e.Path != "" {
				t.Errorf("Listen(%q) bound %+v, want a tcp Addr with its port and no Path", tc.endpoint, e)
			}
			e.Listener.Close()
			continue
		}
		if err == nil {
			e.Listener.Close()
			t.Errorf("Listen(%q) succeeded, want %q", tc.endpoint, tc.wantErr)
		} else if !strings.HasPrefix(err.Error(), tc.wantErr) {
			t.Errorf("Listen(%q) = %v, want %q", tc.endpoint, err, tc.wantErr)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for host, want := range map[string]bool{
		"localhost": true, "127.0.0.1": true, "127.1.2.3": true, "::1": true,
		"": false, "0.0.0.0": false, "192.0.2.1": false, "example.com": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// An ipc endpoint replaces a stale socket file, gets its mode, refuses a
// live socket and a non-socket, and its file goes with the listener or
// with RemoveFile.
func TestListenIPC(t *testing.T) {
	t.Parallel()
	for _, keep := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "s.sock")
		stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		stale.SetUnlinkOnClose(false)
		stale.Close()

		o := testOpts
		o.Mode, o.KeepFile = 0o660, keep
		e, err := Listen("ipc://"+path, o)
		if err != nil {
			t.Fatalf("Listen over a stale socket file: %v", err)
		}
		if e.Addr != "ipc://"+path || e.Path != path {
			t.Errorf("Listen bound %+v, want Addr ipc://%s and Path %s", e, path, path)
		}
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != 0o660 || fi.Mode().Type() != fs.ModeSocket {
			t.Errorf("socket file = %v, %v; want a socket with 0660", fi.Mode(), err)
		}
		if _, err := Listen("ipc://"+path, o); err == nil || !strings.Contains(err.Error(), "in use") {
			t.Errorf("Listen on a live ipc path = %v, want an in-use error", err)
		}
		e.Listener.Close()
		_, err = os.Lstat(path)
		if gone := errors.Is(err, fs.ErrNotExist); gone == keep {
			t.Errorf("KeepFile %v: socket file after listener Close: %v", keep, err)
		}
		if err := e.RemoveFile(); err != nil {
			t.Errorf("RemoveFile() = %v", err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket file after RemoveFile: %v, want it gone", err)
		}

		plain := filepath.Join(dir, "notes.txt")
		os.WriteFile(plain, []byte("keep me"), 0o644)
		if _, err := Listen("ipc://"+plain, o); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Listen on a regular file = %v, want a not-a-socket error", err)
		}
		if b, _ := os.ReadFile(plain); string(b) != "keep me" {
			t.Errorf("regular file was touched: %q", b)
		}
	}
}

// acceptLoop hands over connections until handle says stop, and returns
// once done is closed and the listener fails.
func TestAcceptLoop(t *testing.T) {
	t.Parallel()
	for _, stopByHandle := range []bool{false, true} {
		e, err := Listen("tcp://127.0.0.1:0", testOpts)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		got := make(chan net.Conn, 2)
		returned := make(chan struct{})
		go func() {
			defer close(returned)
			acceptLoop(e.Listener, done, slog.New(slog.DiscardHandler), e.Addr, func(nc net.Conn) bool {
				got <- nc
				return !stopByHandle
			})
		}()
		c, err := net.Dial("tcp", strings.TrimPrefix(e.Addr, "tcp://"))
		if err != nil {
			t.Fatal(err)
		}
		(<-got).Close()
		c.Close()
		if !stopByHandle {
			close(done)
			e.Listener.Close()
		}
		select {
		case <-returned:
		case <-time.After(5 * time.Second):
			t.Fatalf("stopByHandle %v: acceptLoop did not return", stopByHandle)
		}
		e.Listener.Close()
	}
}
