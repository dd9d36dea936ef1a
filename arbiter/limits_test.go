package arbiter_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// A worker that grows past limit.max_rss is replaced gracefully, its
// replacement first; the other worker is untouched.
func TestLimitMaxRSS(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:hog]
cmd = WORKER hog 100000000 $(circus.wid) 1
numprocesses = 2
limit.max_rss = 60M
limit.grace = 0.3
limit.interval = 0.1
graceful_timeout = 2
`)
	procs := func() map[int]int { // wid → pid
		_, ps, err := r.Watcher("hog").Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		m := map[int]int{}
		for _, p := range ps {
			if !p.Stopping {
				m[p.Wid] = p.Pid
			}
		}
		return m
	}
	var hog, other int
	waitFor(t, "2 workers", 10*time.Second, func() bool {
		m := procs()
		hog, other = m[1], m[2]
		return hog != 0 && other != 0
	})
	waitFor(t, "a limit event", 20*time.Second, func() bool { return len(r.events.Of(pubsub.Limit)) > 0 })
	ev := r.events.Of(pubsub.Limit)[0]
	if ev.Pid != hog || !strings.Contains(ev.Reason, "over limit.max_rss 60.0 MiB for ") {
		t.Fatalf("limit event %+v, want pid %d over max_rss", ev, hog)
	}
	waitFor(t, "the hog reaped", 20*time.Second, func() bool { return index(r.events.All(), pubsub.Reap, hog) >= 0 })
	evs := r.events.All()
	// Graceful: the replacement was spawned before the hog got its stop
	// signal (SIGTERM, not SIGKILL).
	kill := index(evs, pubsub.Kill, hog)
	var fresh int
	for _, e := range evs[index(evs, pubsub.Limit, hog):kill] {
		if e.Kind == pubsub.Spawn {
			fresh = e.Pid
		}
	}
	if fresh == 0 || evs[kill].Signal != 15 {
		t.Errorf("events after the limit: %+v; want a spawn, then SIGTERM to %d", evs[index(evs, pubsub.Limit, hog):], hog)
	}
	m := procs()
	if m[2] != other || !slices.Contains([]int{m[1], m[3]}, fresh) {
		t.Errorf("workers by wid %v: want %d untouched in slot 2 and the replacement %d", m, other, fresh)
	}
	if n := len(r.events.Of(pubsub.Limit)); n != 1 {
		t.Errorf("%d limit events, want 1 (the replacement does not hog)", n)
	}
	if st := watcherStatus(t, r, "hog"); st.Restarts["limits"] != 1 || st.LastExit == nil || !st.LastExit.Expected || st.LastExit.Pid != hog {
		t.Errorf("Restarts = %v, LastExit = %+v; want the hog counted under limits, expected", st.Restarts, st.LastExit)
	}
}

// A worker that keeps a core busy past limit.max_cpu is replaced. The limit
// is far below a core, so that a spinner on a loaded machine (seen: 35% of
// a core with both cores busy) is still well over it.
func TestLimitMaxCPU(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:spin]
cmd = WORKER spin
limit.max_cpu = 10
limit.grace = 1
limit.interval = 0.5
graceful_timeout = 1
respawn = false
`)
	pid := onePid(t, r, "spin")
	waitFor(t, "a limit event", 20*time.Second, func() bool { return len(r.events.Of(pubsub.Limit)) > 0 })
	ev := r.events.Of(pubsub.Limit)[0]
	if ev.Pid != pid || !strings.Contains(ev.Reason, "over limit.max_cpu 10%") {
		t.Fatalf("limit event %+v, want pid %d over max_cpu", ev, pid)
	}
	waitFor(t, "the spinner reaped", 20*time.Second, func() bool { return index(r.events.All(), pubsub.Reap, pid) >= 0 })
}
