package arbiter_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// runErr waits for Run to return by itself and gives its error.
func runErr(t *testing.T, r *running) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- nil // the cleanup's stop returns at once
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("Run did not return within 60s of the critical watcher giving up")
		return nil
	}
}

// A critical watcher that gives up after the flapping limit's retries
// ends Run with a *CriticalError naming it, and the other watchers are
// stopped gracefully: their workers get stop_signal (SIGINT here, to tell
// it from any default) and die of it, never SIGKILL (issue 16).
func TestCriticalFlappingEndsRun(t *testing.T) {
	t.Parallel()
	r := launch(t, `
[watcher:web]
cmd = WORKER sleep
numprocesses = 2
stop_signal = INT
priority = 1

[watcher:crashy]
cmd = WORKER exit 3
critical = true
flapping.attempts = 2
flapping.window = 30
flapping.retry_in = 0.1
flapping.max_retry = 1
`)
	err := runErr(t, r)
	var ce *arbiter.CriticalError
	if !errors.As(err, &ce) || ce.Watcher != "crashy" {
		t.Fatalf("Run = %v, want a *CriticalError naming crashy", err)
	}
	if want := "critical watcher crashy gave up: flapping: 2 deaths within 30s; gave up after 1 retries"; err.Error() != want {
		t.Errorf("Run = %q, want %q", err, want)
	}
	var webPids []int
	for _, ev := range r.events.Of(pubsub.Spawn) {
		if ev.Watcher == "web" {
			webPids = append(webPids, ev.Pid)
		}
	}
	if len(webPids) != 2 {
		t.Fatalf("web spawned %v, want 2 workers", webPids)
	}
	for _, pid := range webPids {
		var sigs []int
		reaped := false
		for _, ev := range r.events.All() {
			switch {
			case ev.Pid != pid:
			case ev.Kind == pubsub.Kill:
				sigs = append(sigs, ev.Signal)
			case ev.Kind == pubsub.Reap:
				reaped = true
				if ev.ExitCode != -int(syscall.SIGINT) {
					t.Errorf("web worker %d exit code %d, want -%d (its stop_signal)", pid, ev.ExitCode, syscall.SIGINT)
				}
			}
		}
		if !reaped || len(sigs) != 1 || sigs[0] != int(syscall.SIGINT) {
			t.Errorf("web worker %d: signals %v, reaped %v; want its stop_signal alone, then reaped", pid, sigs, reaped)
		}
	}
}

// Failed spawns give up too: max_retry of them in a row on a critical
// watcher end Run. A watcher that is not critical gives up alone.
func TestCriticalSpawnFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		critical bool
	}{{"critical", true}, {"not critical", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			crit := "false"
			if tc.critical {
				crit = "true"
			}
			r := launch(t, `
[watcher:web]
cmd = WORKER sleep

[watcher:missing]
cmd = /nonexistent/ringmaster-test-program
max_retry = 1
critical = `+crit+`
`)
			if !tc.critical {
				waitFor(t, "missing to give up", 20*time.Second, func() bool {
					st := watcherStatus(t, r, "missing")
					return st.State == arbiter.Stopped && st.Detail != ""
				})
				select {
				case err := <-r.done:
					r.done <- err
					t.Fatalf("Run returned %v for a watcher that is not critical", err)
				default:
				}
				if st := watcherStatus(t, r, "web"); st.State != arbiter.Active {
					t.Errorf("web %v, want active", st.State)
				}
				return
			}
			err := runErr(t, r)
			var ce *arbiter.CriticalError
			if !errors.As(err, &ce) || ce.Watcher != "missing" || ce.Reason == "" {
				t.Fatalf("Run = %v, want a *CriticalError naming missing", err)
			}
			t.Logf("Run = %v", err)
		})
	}
}

// A reloadconfig that changes critical alone applies it without a new
// worker.
func TestCriticalReloaded(t *testing.T) {
	t.Parallel()
	ini := `
[watcher:web]
cmd = WORKER sleep
critical = `
	r := start(t, ini+"false\n")
	before := r.pids(t, "web")
	if err := r.Reload(context.Background(), loadINI(t, ini+"true\n")); err != nil {
		t.Fatal(err)
	}
	var st arbiter.Status
	waitFor(t, "the new config in use", 10*time.Second, func() bool {
		st = watcherStatus(t, r, "web")
		return r.Watcher("web").Config().Critical
	})
	if after := r.pids(t, "web"); !slices.Equal(before, after) || len(st.Procs) != 1 {
		t.Errorf("workers %v after the reload, want %v untouched", after, before)
	}
}
