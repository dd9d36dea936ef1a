package arbiter_test

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

var guardianStarted = regexp.MustCompile(`msg="guardian started" pid=([0-9]+) kill="[^"]+"(?: dir=(\S+))?`)

// guardians returns the pids of the guardians r started, in order, and the
// cgroup directory the first one guards.
func guardians(r *running) (pids []int, dir string) {
	for _, m := range guardianStarted.FindAllStringSubmatch(r.log.String(), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
		if dir == "" {
			dir = m[2]
		}
	}
	return pids, dir
}

// guarded returns r's first guardian and the tree it guards, or skips the
// test on a host where the arbiter has no tree (its log says why).
func guarded(t *testing.T, r *running) (pid int, dir string) {
	t.Helper()
	pids, dir := guardians(r)
	if len(pids) == 0 || dir == "" {
		t.Skipf("no guardian over a cgroup tree on this host: %s", r.Cgroups().Reason)
	}
	return pids[0], dir
}

// Several arbiters in one process each have a guardian of their own, over
// their own tree; one stops, and its guardian goes with it alone, without
// an orphan event, while the other's keeps guard.
func TestGuardianPerArbiter(t *testing.T) {
	t.Parallel()
	const ini = "[watcher:w]\ncmd = WORKER sleep\n"
	a, b := start(t, ini), start(t, ini)
	ga, da := guarded(t, a)
	gb, db := guarded(t, b)
	if ga == gb || da == db {
		t.Fatalf("two arbiters share a guardian: pids %d and %d, dirs %s and %s", ga, gb, da, db)
	}
	if !arbiter.Guarded(a.Arbiter) || !arbiter.Guarded(b.Arbiter) {
		t.Errorf("Guarded = %v, %v with a guardian each, want true", arbiter.Guarded(a.Arbiter), arbiter.Guarded(b.Arbiter))
	}
	a.stop()
	if !gone(ga) {
		t.Errorf("guardian %d still there after its arbiter stopped", ga)
	}
	if gone(gb) {
		t.Errorf("the other arbiter's guardian %d went too", gb)
	}
	for _, ev := range a.events.Of(pubsub.Orphan) {
		if ev.Pid == ga || ev.Pid == gb {
			t.Errorf("a guardian reported as an orphan: %+v", ev)
		}
	}
}

// A guardian killed while its arbiter runs is replaced, and neither is
// reported as an orphan.
func TestGuardianReplaced(t *testing.T) {
	t.Parallel()
	r := start(t, "[watcher:w]\ncmd = WORKER sleep\n")
	first, _ := guarded(t, r)
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var pids []int
	waitFor(t, "another guardian", 10*time.Second, func() bool {
		pids, _ = guardians(r)
		return len(pids) == 2
	})
	if gone(pids[1]) {
		t.Fatalf("the new guardian %d is not running", pids[1])
	}
	workers := r.pids(t, "w")
	r.stop()
	for _, pid := range append(pids, workers...) {
		if !gone(pid) {
			t.Errorf("process %d still there after the arbiter stopped", pid)
		}
	}
	for _, ev := range r.events.Of(pubsub.Orphan) {
		if slices.Contains(pids, ev.Pid) {
			t.Errorf("a guardian reported as an orphan: %+v", ev)
		}
	}
}

// A watcher with cgroup = off is outside the tree the guardian kills: the
// arbiter says so at start-up, naming it and what that leaves unguarded.
func TestGuardianSaysWhatIsNotGuarded(t *testing.T) {
	t.Parallel()
	r := start(t, "[watcher:free]\ncmd = WORKER sleep\ncgroup = off\n\n[watcher:boxed]\ncmd = WORKER sleep\n")
	guarded(t, r)
	if log := r.log.String(); !strings.Contains(log, `not guarded, with cgroup = off: what workers detach from their process group (daemons) can outlive a SIGKILLed arbiter`) ||
		!strings.Contains(log, "watchers=[free]") {
		t.Errorf("the log does not name the unguarded watcher:\n%s", log)
	}
}

// An arbiter whose guardian cannot be started says so once, and why; its
// workers get the parent-death signal instead, and it is not guarded (an
// upgrade in place is refused).
func TestGuardianNotStarted(t *testing.T) {
	restore := arbiter.FailGuardian(errors.New("guardian: clone: resource temporarily unavailable"))
	defer restore()
	r := start(t, "[watcher:w]\ncmd = WORKER sleep\nnumprocesses = 2\n")
	want := `level=WARN msg="no guardian: workers get the parent-death signal instead, which reaches them alone (not their children nor the daemons they detach) and which an upgrade in place would fire" err="guardian: clone: resource temporarily unavailable"`
	if log := r.log.String(); strings.Count(log, "no guardian") != 1 || !strings.Contains(log, want) || strings.Contains(log, "guardian started") {
		t.Errorf("log:\n%s\nwant the one line\n%s", log, want)
	}
	if arbiter.Guarded(r.Arbiter) {
		t.Error("Guarded = true without a guardian")
	}
}
