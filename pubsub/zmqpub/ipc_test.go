package zmqpub

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// An ipc endpoint replaces a stale socket file, is mode 0600, serves a
// libzmq SUB, and is removed by Close.
func TestIPC(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ps.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // as a killed arbiter leaves it: a file nobody answers on

	s, err := Listen("ipc://"+path, SinkOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket file: %v", err)
	}
	defer s.Close()
	if s.Addr() != "ipc://"+path {
		t.Errorf("Addr() = %q, want %q", s.Addr(), "ipc://"+path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode().Type() != fs.ModeSocket {
		t.Errorf("socket file mode = %v, want a socket with 0600", fi.Mode())
	}

	// A second Sink must not steal a live endpoint.
	if _, err := Listen("ipc://"+path, SinkOptions{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("Listen on a live ipc path = %v, want an in-use error", err)
	}

	evs := oneOfEachKind()
	w := want(evs, "watcher.web.")
	if pyzmq() {
		py := startPySub(t, s.Addr(), len(w), "watcher.web.")
		waitSubscribed(t, s, 1, 1)
		for _, ev := range evs {
			s.Send(pubsub.Topic(ev), pubsub.Body(ev))
		}
		if diff := cmp.Diff(w, py()); diff != "" {
			t.Errorf("libzmq SUB over ipc: frames differ (-want +got):\n%s", diff)
		}
	} else {
		needPyzmq(t) // fails under CI, else skips the rest
	}
	gs := goSub(t, s.Addr(), "watcher.web.")
	waitSubscribed(t, s, 1, 1)
	for _, ev := range evs {
		s.Send(pubsub.Topic(ev), pubsub.Body(ev))
	}
	if diff := cmp.Diff(w, recvN(t, gs, len(w))); diff != "" {
		t.Errorf("Go SUB over ipc: frames differ (-want +got):\n%s", diff)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it removed", err)
	}
}

func TestIPCModeAndNonSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "open.sock")
	s, err := Listen("ipc://"+path, SinkOptions{Mode: 0o660})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode with Mode 0660 = %v, %v", fi.Mode(), err)
	}
	s.Close()

	plain := filepath.Join(dir, "notes.txt")
	os.WriteFile(plain, []byte("keep me"), 0o644)
	if _, err := Listen("ipc://"+plain, SinkOptions{}); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen on a regular file = %v, want a not-a-socket error", err)
	}
	if b, _ := os.ReadFile(plain); string(b) != "keep me" {
		t.Errorf("regular file was touched: %q", b)
	}
}
