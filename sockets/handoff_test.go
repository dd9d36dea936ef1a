package sockets

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestPrepare(t *testing.T) {
	t.Parallel()
	web := mustBind(t, tcp4("web"))
	admin := mustBind(t, unixSpec("admin", filepath.Join(t.TempDir(), "admin.sock")))
	h := mustPrepare(t, admin, web)

	want := &Handoff{
		Files: []*os.File{admin.file, web.file},
		Env:   []string{"LISTEN_FDS=2", "LISTEN_FDNAMES=admin:web"},
		FDs:   map[string]int{"admin": 3, "web": 4},
	}
	if diff := cmp.Diff(want, h, cmpHandoff); diff != "" {
		t.Errorf("Prepare(admin, web) mismatch (-want +got):\n%s", diff)
	}

	r := describeChild(t, h.Files, h.Env...)
	if diff := cmp.Diff(map[string]string{"LISTEN_FDS": "2", "LISTEN_FDNAMES": "admin:web"}, r.Env); diff != "" {
		t.Errorf("child LISTEN_* mismatch (-want +got):\n%s", diff)
	}
	var got []int
	for _, f := range userFDs(r) {
		got = append(got, f.FD)
	}
	if diff := cmp.Diff([]int{0, 1, 2, 3, 4}, got); diff != "" {
		t.Errorf("child fds mismatch (-want +got):\n%s\nall: %+v", diff, r.FDs)
	}

	// Closing the Handoff leaves the shared sockets alone.
	for range 2 {
		if err := h.Close(); err != nil {
			t.Errorf("Handoff.Close() = %v", err)
		}
	}
	c, err := net.DialTimeout("tcp", web.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s after Handoff.Close: %v", web.Addr(), err)
	}
	c.Close()

	empty := mustPrepare(t)
	if diff := cmp.Diff(&Handoff{Files: []*os.File{}, Env: []string{"LISTEN_FDS=0", "LISTEN_FDNAMES="}, FDs: map[string]int{}}, empty, cmpHandoff); diff != "" {
		t.Errorf("Prepare() mismatch (-want +got):\n%s", diff)
	}
}

// cmpHandoff compares Handoffs by their exported fields, files by identity.
var cmpHandoff = cmp.Options{
	cmp.Comparer(func(a, b *os.File) bool { return a == b }),
	cmpopts.IgnoreUnexported(Handoff{}),
}

func TestReusePort(t *testing.T) {
	t.Parallel()
	spec := tcp4("web")
	spec.ReusePort = true
	s := mustBind(t, spec)
	if s.Port() == 0 {
		t.Fatal("Port() = 0 for a reuseport socket, want the reserved port")
	}
	// The arbiter's socket reserves the port but does not listen.
	if c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second); err == nil {
		c.Close()
		t.Fatalf("dial %s before any Prepare succeeded, want connection refused", s.Addr())
	} else if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s before any Prepare = %v, want connection refused", s.Addr(), err)
	}
	// Nobody else may take the port without SO_REUSEPORT.
	other := tcp4("other")
	other.Port = s.Port()
	if o, err := Bind(other); err == nil {
		o.Close()
		t.Errorf("Bind(port %d) without reuseport succeeded, want address in use", other.Port)
	}

	pids := map[string]bool{}
	for range 2 {
		h := mustPrepare(t, s)
		if h.Files[0] == s.file {
			t.Fatal("Prepare handed out the shared reuseport socket, want a private copy")
		}
		cmd := startHelper(t, "serve", h.Files)
		if err := h.Close(); err != nil {
			t.Fatalf("Handoff.Close() = %v", err)
		}
		pids["pid "+strconv.Itoa(cmd.Process.Pid)] = false
	}

	// The kernel hashes each connection's 4-tuple: new source ports spread
	// connections over both listeners.
	deadline := time.Now().Add(10 * time.Second)
	seen := 0
	for tries := 0; seen < 2 && time.Now().Before(deadline); tries++ {
		got := askPid(t, "tcp", s.Addr())
		done, ok := pids[got]
		if !ok {
			t.Fatalf("answer %q on %s, want one of %v", got, s.Addr(), pids)
		}
		if !done {
			pids[got] = true
			seen++
		}
	}
	if seen < 2 {
		t.Errorf("connections to %s reached %d of 2 workers (%v)", s.Addr(), seen, pids)
	}
}

func TestPrepareClosed(t *testing.T) {
	t.Parallel()
	s := mustBind(t, tcp4("web"))
	s.Close()
	if h, err := Prepare([]*Socket{s}); err == nil {
		h.Close()
		t.Fatal("Prepare of a closed socket succeeded")
	} else if !errors.Is(err, net.ErrClosed) {
		t.Errorf("Prepare of a closed socket = %v, want net.ErrClosed", err)
	}
}
