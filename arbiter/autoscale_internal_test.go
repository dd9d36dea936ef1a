package arbiter

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

func autoscaled(mod func(*config.Watcher)) *config.Watcher {
	return testWatcher(func(c *config.Watcher) {
		c.Autoscale = config.Autoscale{Min: 1, Max: 8, Idle: 2 * time.Second, DownInterval: 200 * time.Millisecond,
			UpAfter: 100 * time.Millisecond, QueuePerWorker: 1}
		if mod != nil {
			mod(c)
		}
	})
}

// feed offers w a sample of q every 100 ms for d, as the sampler does.
func feed(w *Watcher, q int, d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		w.offerQueue(queueSample{at: time.Now(), depth: q, backlog: 64})
		time.Sleep(100 * time.Millisecond)
	}
	synctest.Wait()
}

func target(t *testing.T, w *Watcher) int {
	t.Helper()
	st, err := w.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st.Target
}

func (e *eventLog) scales() []pubsub.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []pubsub.Event
	for _, ev := range e.events {
		if ev.Kind == pubsub.Scale {
			out = append(out, ev)
		}
	}
	return out
}

// The loop grows the pool on a queue that stays, publishing why, and
// shrinks it gracefully after idle, one at a time, to min.
func TestAutoscaleLoop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now()}
		ev := &eventLog{}
		w := runWatcher(t, autoscaled(nil), l, ev)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		feed(w, 5, 200*time.Millisecond)
		if n := target(t, w); n != 6 {
			t.Fatalf("after a queue of 5 for 100ms: numprocesses %d, want 6", n)
		}
		if got := ev.count(pubsub.Spawn); got != 6 {
			t.Errorf("spawns = %d, want 6", got)
		}
		sc := ev.scales()
		if len(sc) != 1 || sc[0].From != 1 || sc[0].To != 6 || sc[0].Reason != "queue 5 for 100ms" || sc[0].Watcher != "fake" {
			t.Errorf("scale events = %+v, want one from 1 to 6, queue 5 for 100ms", sc)
		}
		st, _ := w.Status(context.Background())
		if a := st.Autoscale; a == nil || a.Min != 1 || a.Max != 8 || a.Queue != 5 || a.Backlog != 64 {
			t.Errorf("Status().Autoscale = %+v, want 1..8, queue 5 of 64", a)
		}
		feed(w, 0, 10*time.Second)
		if n := target(t, w); n != 1 {
			t.Fatalf("after 10s of an empty queue: numprocesses %d, want min 1", n)
		}
		if got := ev.count(pubsub.Reap); got != 5 {
			t.Errorf("reaps = %d, want 5 (each stopped by stop_signal)", got)
		}
		var downs []int
		for _, e := range ev.scales()[1:] {
			if e.To != e.From-1 {
				t.Errorf("scale event %+v: want one worker at a time", e)
			}
			downs = append(downs, e.To)
		}
		if want := []int{5, 4, 3, 2, 1}; !slices.Equal(downs, want) {
			t.Errorf("shrank through %v, want %v", downs, want)
		}
	})
}

// No decision while a reload runs, nor while the watcher is stopped; an
// unreadable queue decides nothing either.
func TestAutoscaleHolds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now(), delay: 2 * time.Second}
		ev := &eventLog{}
		w := runWatcher(t, autoscaled(nil), l, ev)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		reloaded := make(chan error, 1)
		go func() { reloaded <- w.Restart(context.Background()) }()
		feed(w, 10, time.Second) // the replacement takes 2 s to spawn
		select {
		case err := <-reloaded:
			t.Fatalf("the reload ended early: %v", err)
		default:
		}
		if sc := ev.scales(); len(sc) != 0 {
			t.Errorf("scale events during a reload: %+v", sc)
		}
		if err := <-reloaded; err != nil {
			t.Fatal(err)
		}

		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		feed(w, 10, time.Second)
		if sc := ev.scales(); len(sc) != 0 || target(t, w) != 1 {
			t.Errorf("a stopped watcher was resized: %+v", sc)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			w.offerQueue(queueSample{at: time.Now(), depth: 10, err: errors.New("socket closed")})
			time.Sleep(100 * time.Millisecond)
		}
		synctest.Wait()
		if sc := ev.scales(); len(sc) != 0 {
			t.Errorf("scale events on unreadable queues: %+v", sc)
		}
	})
}

// incr, decr and a new numprocesses move the size within [min, max];
// new bounds (set, reloadconfig) bring it within them, with an event.
func TestAutoscaleResize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now()}
		ev := &eventLog{}
		cfg := autoscaled(func(c *config.Watcher) { c.NumProcesses = 2 })
		w := runWatcher(t, cfg, l, ev)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ delta, want int }{{100, 8}, {-3, 5}, {-100, 1}} {
			if n, err := w.Incr(context.Background(), tc.delta); err != nil || n != tc.want {
				t.Errorf("Incr(%d) = %d, %v, want %d", tc.delta, n, err, tc.want)
			}
		}
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, _ := w.Incr(context.Background(), 5); n != 6 {
			t.Fatalf("Incr(5) = %d, want 6", n)
		}
		// reloadconfig with new bounds only: the size stays where it is,
		// within them.
		nc := *cfg
		nc.Autoscale.Max = 4
		if err := w.setNumProcesses(context.Background(), &nc); err != nil {
			t.Fatal(err)
		}
		if n := target(t, w); n != 4 {
			t.Errorf("after autoscale.max = 4: numprocesses %d, want 4", n)
		}
		sc := ev.scales()
		if len(sc) != 1 || sc[0].From != 6 || sc[0].To != 4 || sc[0].Reason != "autoscale.min..autoscale.max is now 1..4" {
			t.Errorf("scale events = %+v, want 6 → 4 for the new bounds", sc)
		}
		// Autoscaling turned off: numprocesses is the file's again.
		off := nc
		off.Autoscale.Max = 0
		if err := w.setNumProcesses(context.Background(), &off); err != nil {
			t.Fatal(err)
		}
		if n := target(t, w); n != 2 {
			t.Errorf("autoscaling off: numprocesses %d, want the file's 2", n)
		}
		feed(w, 10, time.Second)
		if n := target(t, w); n != 2 {
			t.Errorf("autoscaling off, a queue of 10: numprocesses %d, want 2", n)
		}
	})
}

// An empty pool starts a worker at its first waiting connection.
func TestAutoscaleFromZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now()}
		ev := &eventLog{}
		w := runWatcher(t, autoscaled(func(c *config.Watcher) {
			c.NumProcesses = 0
			c.Autoscale.Min = 0
		}), l, ev)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if !w.scaleZero.Load() || !w.scaleOn.Load() {
			t.Fatalf("an active pool of 0: scaleOn %v, scaleZero %v, want both", w.scaleOn.Load(), w.scaleZero.Load())
		}
		w.offerQueue(queueSample{at: time.Now(), depth: 1})
		synctest.Wait()
		if got := ev.count(pubsub.Spawn); got != 1 {
			t.Fatalf("spawns after one waiting connection = %d, want 1 at once", got)
		}
		if w.scaleZero.Load() {
			t.Error("scaleZero still set with a worker")
		}
		feed(w, 0, 2500*time.Millisecond)
		if n := target(t, w); n != 0 {
			t.Errorf("after idle: numprocesses %d, want 0", n)
		}
		if !w.scaleZero.Load() {
			t.Error("scaleZero not set again once empty")
		}
	})
}
