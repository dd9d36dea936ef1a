package arbiter_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// An upgrade whose exec fails changes nothing: the state it was handed
// names every worker, with the size changed at run time, and afterwards
// the same workers run, the watcher takes commands, and a worker that
// dies is reaped and replaced (the reaper was held, and is not any more).
func TestUpgradeExecFailsKeepsEverything(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
numprocesses = 2
`)
	ctx := context.Background()
	if _, err := r.Watcher("web").Incr(ctx, 1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "3 workers", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 3 })
	before := r.pids(t, "web")
	refused := errors.New("exec refused")
	var got *arbiter.Handover
	err := r.Upgrade(ctx, func(h *arbiter.Handover) error {
		got = h
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Upgrade = %v, want the exec's error", err)
	}
	if got == nil || len(got.Watchers) != 1 {
		t.Fatalf("hand-over %+v, want one watcher", got)
	}
	wh := got.Watchers[0]
	var pids []int
	for _, p := range wh.Workers {
		pids = append(pids, p.Pid)
	}
	slices.Sort(pids)
	if wh.Target != 3 || wh.State != arbiter.Active || !slices.Equal(pids, before) {
		t.Errorf("handed over target %d state %v pids %v, want 3 active %v", wh.Target, wh.State, pids, before)
	}
	if after := r.pids(t, "web"); !slices.Equal(after, before) {
		t.Errorf("workers %v after the failed upgrade, want %v", after, before)
	}
	if _, err := r.Watcher("web").Incr(ctx, 1); err != nil {
		t.Fatalf("incr after the failed upgrade: %v", err)
	}
	waitFor(t, "4 workers", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 4 })
	if err := syscall.Kill(before[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the killed worker replaced", 10*time.Second, func() bool {
		p := r.pids(t, "web")
		return len(p) == 4 && !slices.Contains(p, before[0])
	})
}

// An upgrade waits for a quiet moment: while a watcher is stopping a
// worker that ignores SIGTERM, the exec is not called, and a caller that
// gives up gets its context's error, with nothing changed.
func TestUpgradeWaitsForBusyWatcher(t *testing.T) {
	t.Parallel()
	note := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:stubborn]
cmd = WORKER ignoreterm `+note+`
graceful_timeout = 30
`)
	ctx := context.Background()
	// It ignores SIGTERM once it has written its pid.
	waitFor(t, "the worker ignoring SIGTERM", 10*time.Second, func() bool {
		b, err := os.ReadFile(note)
		return err == nil && len(b) > 0
	})
	stopped := make(chan error, 1)
	go func() { stopped <- r.Watcher("stubborn").Stop(ctx) }()
	waitFor(t, "the watcher stopping", 10*time.Second, func() bool {
		st, err := r.Watcher("stubborn").Status(ctx)
		return err == nil && st.State == arbiter.Stopping
	})
	tctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	called := false
	err := r.Upgrade(tctx, func(*arbiter.Handover) error { called = true; return nil })
	if !errors.Is(err, context.DeadlineExceeded) || called {
		t.Fatalf("Upgrade while stopping = %v (exec called: %v), want the deadline, no exec", err, called)
	}
	// The stop goes on: SIGKILL ends it once killed by hand.
	b, _ := os.ReadFile(note)
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil {
		t.Fatal(err)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("stop: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the stop did not end")
	}
}

// RunProgram runs a child through the arbiter's own reaper: its output and
// how it ended come back, and no exit is taken for an orphan's.
func TestRunProgram(t *testing.T) {
	t.Parallel()
	r := start(t, "[watcher:idle]\ncmd = WORKER sleep\nautostart = false\n")
	ctx := context.Background()
	out, err := r.RunProgram(ctx, "/bin/sh", []string{"-c", "echo ringmaster-handover 1 1 v1"}, 10*time.Second)
	if err != nil || strings.TrimSpace(string(out)) != "ringmaster-handover 1 1 v1" {
		t.Errorf("RunProgram(echo) = %q, %v", out, err)
	}
	if _, err := r.RunProgram(ctx, "/bin/sh", []string{"-c", "echo nope >&2; exit 3"}, 10*time.Second); err == nil || err.Error() != "exit status 3: nope" {
		t.Errorf("RunProgram(exit 3) = %v, want exit status 3: nope", err)
	}
	if _, err := r.RunProgram(ctx, filepath.Join(t.TempDir(), "missing"), nil, 10*time.Second); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("RunProgram(missing) = %v, want no such file", err)
	}
	if _, err := r.RunProgram(ctx, "/bin/sleep", []string{"60"}, 50*time.Millisecond); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("RunProgram(sleep 60) = %v, want a time-out", err)
	}
	if n := len(r.events.Of(pubsub.Orphan)); n != 0 {
		t.Errorf("%d orphan events: a program's exit taken for an orphan's", n)
	}
}
