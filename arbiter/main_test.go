package arbiter_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// worker is the path of the testworker binary, built once.
var worker string

func TestMain(m *testing.M) {
	if code, ok := arbiter.CgroupHandoverRole(); ok {
		os.Exit(code)
	}
	if code, ok := arbiter.GuardRole(); ok {
		os.Exit(code)
	}
	os.Exit(arbtest.Main(m, &worker))
}

// running is an arbiter under test.
type running struct {
	*arbiter.Arbiter
	events *arbtest.Events
	log    *arbtest.LogBuf
	cancel context.CancelFunc
	done   chan error
}

// loadINI writes ini (WORKER replaced by the testworker path) into a
// temporary directory and loads it.
func loadINI(t testing.TB, ini string) *config.Config {
	t.Helper()
	return arbtest.LoadINI(t, worker, ini)
}

// start runs an arbiter on ini until the test ends; each of before is
// called with it between New and Run.
func start(t testing.TB, ini string, before ...func(*arbiter.Arbiter)) *running {
	t.Helper()
	r := launch(t, ini, before...)
	select {
	case <-r.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start within 30s")
	}
	return r
}

// launch is start without waiting for the arbiter to have started its
// watchers.
func launch(t testing.TB, ini string, before ...func(*arbiter.Arbiter)) *running {
	t.Helper()
	cfg := loadINI(t, ini)
	r := &running{events: &arbtest.Events{}, log: &arbtest.LogBuf{T: t}, done: make(chan error, 1)}
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug})), Publisher: r.events})
	if err != nil {
		t.Fatalf("arbiter.New: %v", err)
	}
	r.Arbiter = a
	for _, f := range before {
		f(a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- a.Run(ctx) }()
	t.Cleanup(r.stop)
	return r
}

// stop shuts the arbiter down and waits for Run to return.
func (r *running) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			r.log.T.Errorf("Run: %v", err)
		}
		r.done <- err // later calls return at once
	case <-time.After(60 * time.Second):
		r.log.T.Error("Run did not return within 60s of cancel")
	}
}

// pids returns the live (not stopping) workers of a watcher, sorted.
func (r *running) pids(t testing.TB, name string) []int {
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

// waitFor polls cond until it holds, failing the test after d.
var waitFor = testproc.WaitFor

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
