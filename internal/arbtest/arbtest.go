// Package arbtest is the shared harness of tests that run an arbiter in
// their own process: their TestMain, their configuration files, an event
// recorder and a log sink. It is apart from testproc because it needs
// pubsub, whose own tests use testproc.
package arbtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Main is the TestMain of a package that runs an arbiter in-process: it
// marks inherited fds close-on-exec (they must not leak into workers),
// builds testworker into a temporary directory (mode 0755, so workers that
// run as nobody can write there) before any test runs, since an in-process
// arbiter reaps every child of the test binary, sets *worker to its path,
// runs the tests and then checks for leaked goroutines and cgroups. It
// returns the exit code for os.Exit.
func Main(m *testing.M, worker *string) int {
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	dir, err := os.MkdirTemp("", "testproc")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	_ = os.Chmod(dir, 0o755)
	if *worker, err = testproc.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	// Every arbiter removes its cgroups when Run returns; one left is a
	// leak of whatever ran in it too.
	if h, err := cgroups.Detect(); err == nil && code == 0 {
		if left := h.Trees("ringmaster", os.Getpid()); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "cgroups left behind:", left)
			code = 1
		}
	}
	if code == 0 {
		// The arbiter's reaper listens for SIGCHLD through os/signal,
		// whose goroutine lives as long as the process.
		if err := goleak.Find(goleak.IgnoreTopFunction("os/signal.signal_recv"), goleak.IgnoreAnyFunction("os/signal.loop")); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	return code
}

// Events is an arbiter Publisher that keeps every event.
type Events struct {
	mu     sync.Mutex
	events []pubsub.Event
}

// Publish keeps ev.
func (r *Events) Publish(ev pubsub.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// All returns a copy of every event so far, in order.
func (r *Events) All() []pubsub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]pubsub.Event(nil), r.events...)
}

// Of returns the events of one kind.
func (r *Events) Of(kind pubsub.Kind) []pubsub.Event {
	var out []pubsub.Event
	for _, ev := range r.All() {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// LogBuf keeps a log for assertions and echoes it to the test's output, so
// that it shows only when the test fails.
type LogBuf struct {
	T   testing.TB
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *LogBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.T.Output().Write(p)
}

// String returns the log so far.
func (l *LogBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// WriteINI writes ini to dir/test.ini, with WORKER replaced by worker (the
// testworker path) and DIR by dir, and returns its path.
func WriteINI(t testing.TB, dir, worker, ini string) string {
	t.Helper()
	ini = strings.ReplaceAll(ini, "WORKER", worker)
	ini = strings.ReplaceAll(ini, "DIR", dir)
	path := filepath.Join(dir, "test.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// LoadINI writes ini as WriteINI does, into a fresh temporary directory,
// and loads it, failing the test on a configuration error.
func LoadINI(t testing.TB, worker, ini string) *config.Config {
	t.Helper()
	cfg, err := config.Load(WriteINI(t, t.TempDir(), worker, ini))
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}
