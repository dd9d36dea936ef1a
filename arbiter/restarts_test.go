package arbiter_test

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ringmaster-dev/ringmaster/arbiter"
)

// watcherStatus reads a watcher's Status or fails the test.
func watcherStatus(t *testing.T, r *running, name string) arbiter.Status {
	t.Helper()
	st, err := r.Watcher(name).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// restarted waits until the watcher has counted n deaths in all and
// returns its status then.
func restarted(t *testing.T, r *running, name string, n uint64) arbiter.Status {
	t.Helper()
	var st arbiter.Status
	waitFor(t, "the watcher to count the death", 20*time.Second, func() bool {
		st = watcherStatus(t, r, name)
		var sum uint64
		for _, v := range st.Restarts {
			sum += v
		}
		return sum >= n
	})
	return st
}

// A worker killed by an outside SIGKILL is counted as a signal death, not
// expected, with its pid, slot and signal, as supervisorctl's "terminated
// by SIGKILL; not expected" (issue 16); the watcher stays active, with
// the uptime it had.
func TestRestartsSIGKILL(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
numprocesses = 2
`)
	before := watcherStatus(t, r, "web")
	if before.State != arbiter.Active || before.Since.IsZero() || len(before.Restarts) != 0 || before.LastExit != nil {
		t.Fatalf("Status before any death: %v since %v restarts %v last %v; want active, an uptime, nothing counted",
			before.State, before.Since, before.Restarts, before.LastExit)
	}
	victim := before.Procs[1]
	killed := time.Now()
	if err := syscall.Kill(victim.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := restarted(t, r, "web", 1)
	want := &arbiter.ExitInfo{Pid: victim.Pid, Wid: victim.Wid, Code: -1, Signal: syscall.SIGKILL, Reason: arbiter.ReasonSignal}
	if diff := cmp.Diff(want, st.LastExit, cmpopts.IgnoreFields(arbiter.ExitInfo{}, "Time")); diff != "" {
		t.Errorf("LastExit after a SIGKILL (-want +got):\n%s", diff)
	}
	if st.LastExit.Time.Before(killed) {
		t.Errorf("LastExit.Time %v, before the kill at %v", st.LastExit.Time, killed)
	}
	if diff := cmp.Diff(map[string]uint64{"signal": 1}, st.Restarts); diff != "" {
		t.Errorf("Restarts (-want +got):\n%s", diff)
	}
	if !st.Since.Equal(before.Since) {
		t.Errorf("Since %v after a worker's death, want %v: the watcher stayed active", st.Since, before.Since)
	}
	waitFor(t, "the replacement", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 2 })
	for _, p := range watcherStatus(t, r, "web").Procs {
		if want := uint64(map[bool]int{true: 1}[p.Wid == victim.Wid]); p.Restarts != want {
			t.Errorf("worker %d (wid %d) Restarts = %d, want %d", p.Pid, p.Wid, p.Restarts, want)
		}
	}
}

// A worker that exits by itself is counted by its exit status: non-zero
// as "exit" with the code, zero as "clean".
func TestRestartsExitCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, role, reason string
		code               int
	}{
		{"exit 3", "exit 3", arbiter.ReasonExit, 3},
		{"exit 0", "sleepfor 50ms", arbiter.ReasonClean, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, `
[watcher:crashy]
cmd = WORKER `+tc.role+`
flapping.attempts = 0
`)
			st := restarted(t, r, "crashy", 2)
			e := st.LastExit
			if e == nil || e.Reason != tc.reason || e.Code != tc.code || e.Signal != 0 || e.Expected || e.Wid != 1 {
				t.Errorf("LastExit = %+v, want reason %s, code %d, not expected, wid 1", e, tc.reason, tc.code)
			}
			if len(st.Restarts) != 1 || st.Restarts[tc.reason] < 2 {
				t.Errorf("Restarts = %v, want only %s", st.Restarts, tc.reason)
			}
		})
	}
}

// A watcher stopped by the flapping limit says so, when it retries, and
// what killed its workers; it is not active, so it has no uptime.
func TestRestartsFlapping(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:crashy]
cmd = WORKER exit 3
flapping.attempts = 3
flapping.window = 10
flapping.retry_in = 60
flapping.max_retry = 2
restart_delay = 0
`)
	var st arbiter.Status
	waitFor(t, "the flapping stop", 20*time.Second, func() bool {
		st = watcherStatus(t, r, "crashy")
		return st.State == arbiter.Stopped && !st.RetryAt.IsZero()
	})
	if !strings.HasPrefix(st.Detail, "flapping, retry 1 of 2 in ") || !st.Since.IsZero() {
		t.Errorf("Status = %v %q since %v, want a flapping retry and no uptime", st.State, st.Detail, st.Since)
	}
	if st.Restarts[arbiter.ReasonExit] != 3 || st.LastExit == nil || st.LastExit.Code != 3 {
		t.Errorf("Restarts = %v, LastExit = %+v; want the 3 deaths by exit 3", st.Restarts, st.LastExit)
	}
}

// Deaths the arbiter asks for: a stop, a kill command and a reload are
// not restarts, and the counters outlive a reloadconfig that keeps the
// watcher.
func TestRestartsExpected(t *testing.T) {
	t.Parallel()
	ini := func(n int) string {
		return `
[watcher:web]
cmd = WORKER sleep
numprocesses = ` + string(rune('0'+n)) + `
graceful_timeout = 5
`
	}
	r := start(t, ini(1))
	w := r.Watcher("web")
	ctx := context.Background()
	if err := syscall.Kill(r.pids(t, "web")[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	restarted(t, r, "web", 1)
	if err := w.Kill(ctx, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(ctx, loadINI(t, ini(2))); err != nil {
		t.Fatal(err)
	}
	if err := w.Reload(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st := watcherStatus(t, r, "web")
	if diff := cmp.Diff(map[string]uint64{"signal": 1}, st.Restarts); diff != "" {
		t.Errorf("Restarts after kill, reloadconfig, reload and stop (-want +got):\n%s", diff)
	}
	if st.State != arbiter.Stopped || !st.Since.IsZero() {
		t.Errorf("Status after stop: %v since %v, want stopped without an uptime", st.State, st.Since)
	}
}

// max_age recycling counts, as an expected restart.
func TestRestartsMaxAge(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:old]
cmd = WORKER sleep
max_age = 1
max_age_variance = 0
`)
	st := restarted(t, r, "old", 1)
	if e := st.LastExit; e == nil || e.Reason != arbiter.ReasonMaxAge || !e.Expected || e.Signal != syscall.SIGTERM {
		t.Errorf("LastExit = %+v, want max_age, expected, by SIGTERM", e)
	}
}
