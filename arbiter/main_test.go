package arbiter_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// worker is the path of the testworker binary, built once.
var worker string

func TestMain(m *testing.M) {
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	dir, err := os.MkdirTemp("", "arbiter-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Workers of the process-state test run as nobody and write here.
	_ = os.Chmod(dir, 0o755)
	worker, err = testproc.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		code = m.Run()
		if code == 0 {
			if err := goleak.Find(goleak.IgnoreTopFunction("os/signal.signal_recv"), goleak.IgnoreAnyFunction("os/signal.loop")); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				code = 1
			}
		}
	}()
	os.Exit(code)
}

// recorder is a Publisher that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []pubsub.Event
}

func (r *recorder) Publish(ev pubsub.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// of returns the events of one kind.
func (r *recorder) of(kind pubsub.Kind) []pubsub.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []pubsub.Event
	for _, ev := range r.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// logBuf is a concurrency-safe log sink that also echoes to the test log.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
	t   testing.TB
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	return l.t.Output().Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// running is an arbiter under test.
type running struct {
	*arbiter.Arbiter
	events *recorder
	log    *logBuf
	cancel context.CancelFunc
	done   chan error
}

// loadINI writes an ini file into a temp dir and loads it. WORKER in the
// text is replaced by the testworker path.
func loadINI(t *testing.T, ini string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "test.ini")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(ini, "WORKER", worker)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg
}

// start runs an arbiter on ini until the test ends.
func start(t *testing.T, ini string) *running {
	t.Helper()
	cfg := loadINI(t, ini)
	r := &running{events: &recorder{}, log: &logBuf{t: t}, done: make(chan error, 1)}
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug})), Publisher: r.events})
	if err != nil {
		t.Fatalf("arbiter.New: %v", err)
	}
	r.Arbiter = a
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(r.stop)
	select {
	case <-a.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start within 30s")
	}
	return r
}

// stop shuts the arbiter down and waits for Run to return.
func (r *running) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.log.t.Errorf("Run: %v", err)
		}
		r.done <- err // later calls return at once
	case <-time.After(60 * time.Second):
		r.log.t.Error("Run did not return within 60s of cancel")
	}
}

// pids returns the live (not stopping) workers of a watcher, sorted.
func (r *running) pids(t *testing.T, name string) []int {
	t.Helper()
	w := r.Watcher(name)
	if w == nil {
		t.Fatalf("no watcher %q", name)
	}
	_, procs, err := w.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		if !p.Stopping {
			pids = append(pids, p.Pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	testproc.WaitFor(t, what, d, cond)
}

var gone = testproc.Gone

// waitPids waits for a worker to write "PID OTHERPID" to path (testworker's
// ignoreterm and childoutside roles) and returns both.
func waitPids(t *testing.T, path string) (pid, other int) {
	t.Helper()
	waitFor(t, "the worker's pids in "+path, 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		_, err = fmt.Sscanf(string(b), "%d %d", &pid, &other)
		return err == nil
	})
	return pid, other
}
