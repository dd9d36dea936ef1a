package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Autoscale is the autoscale.* keys (Ringmaster's): the arbiter resizes
// the pool from what waits in its sockets' accept queues, within [Min,
// Max]; numprocesses is the size it starts with. Autoscaling is on when
// autoscale.max is set.
type Autoscale struct {
	// Min is autoscale.min (default 1): never fewer workers. 0 lets the
	// pool empty; its socket stays bound and listening, and the first
	// connection waits in its queue while a worker starts.
	Min int
	// Max is autoscale.max: never more workers. 0: autoscaling off.
	Max int
	// Idle is autoscale.idle (default 30 s): how long the queue must stay
	// empty before a worker is stopped.
	Idle time.Duration
	// DownInterval is autoscale.down_interval (default 1 s): once idle,
	// a further worker is stopped each DownInterval for as long as the
	// queue stays empty, one at a time.
	DownInterval time.Duration
	// UpAfter is autoscale.up_after (default 0.1 s): how long connections
	// must keep waiting before workers are added, so that a burst shorter
	// than that adds none. A pool of 0 starts a worker at once.
	UpAfter time.Duration
	// QueuePerWorker is autoscale.queue_per_worker (default 1): how many
	// waiting connections call for one more worker; more than 1 for
	// workers that serve several connections at once.
	QueuePerWorker int
}

// Enabled reports whether the pool is autoscaled.
func (a Autoscale) Enabled() bool { return a.Max > 0 }

// Clamp returns n within [Min, Max], or n itself when autoscaling is off.
func (a Autoscale) Clamp(n int) int {
	if !a.Enabled() {
		return n
	}
	return min(max(n, a.Min), a.Max)
}

func defaultAutoscale() Autoscale {
	return Autoscale{Min: 1, Idle: 30 * time.Second, DownInterval: time.Second, UpAfter: 100 * time.Millisecond, QueuePerWorker: 1}
}

// autoscaleKeys are the autoscale.* keys (in watcherKeys too), of which
// autoscale.max turns the others on.
var autoscaleKeys = []string{
	"autoscale.min", "autoscale.max", "autoscale.idle", "autoscale.down_interval", "autoscale.up_after",
	"autoscale.queue_per_worker",
}

// readAutoscale reads the autoscale.* keys of w, whose numprocesses,
// singleton and respawn are read, and clamps numprocesses into [min, max].
func (f *fields) readAutoscale(w *Watcher) {
	a := &w.Autoscale
	f.integer("autoscale.min", &a.Min, 0, maxInt)
	f.integer("autoscale.max", &a.Max, 0, maxInt)
	f.seconds("autoscale.idle", &a.Idle, false)
	f.seconds("autoscale.down_interval", &a.DownInterval, false)
	f.seconds("autoscale.up_after", &a.UpAfter, false)
	f.integer("autoscale.queue_per_worker", &a.QueuePerWorker, 1, maxInt)
	if _, on := f.get("autoscale.max"); !on {
		for _, k := range autoscaleKeys {
			if _, ok := f.get(k); ok {
				f.errorf(k, "needs autoscale.max, which turns autoscaling on")
				break
			}
		}
		*a = defaultAutoscale()
		return
	}
	switch {
	case !a.Enabled():
		if v, _ := f.get("autoscale.max"); strings.TrimSpace(v) == "0" {
			f.errorf("autoscale.max", "must be at least 1 (leave it out to turn autoscaling off)")
		}
		return // a bad number was reported above
	case a.Min > a.Max:
		f.errorf("autoscale.min", "%d is more than autoscale.max %d", a.Min, a.Max)
	case a.Idle <= 0:
		f.errorf("autoscale.idle", "must be more than 0")
	case a.DownInterval <= 0:
		f.errorf("autoscale.down_interval", "must be more than 0")
	case w.Singleton:
		f.errorf("autoscale.max", "a singleton runs at most 1 process: it cannot be autoscaled")
	case !w.Respawn:
		f.errorf("autoscale.max", "needs respawn = true: a pool that does not replace its workers cannot be resized")
	}
	if n := a.Clamp(w.NumProcesses); n != w.NumProcesses {
		if _, set := f.get("numprocesses"); set {
			f.warnf("numprocesses", "%d is outside autoscale.min..autoscale.max (%d..%d): starting with %d", w.NumProcesses, a.Min, a.Max, n)
		}
		w.NumProcesses = n
	}
}

// CheckAutoscale reports why the accept queues of w's sockets (among
// specs, those its workers inherit) cannot drive its autoscaling, or nil:
// it needs at least one socket, and every one must have a queue the
// arbiter can read ([sockets.Spec.CheckQueue]). A watcher that is not
// autoscaled passes.
func CheckAutoscale(w *Watcher, specs []sockets.Spec) error {
	if !w.Autoscale.Enabled() {
		return nil
	}
	n := 0
	for _, s := range inherited(w, specs) {
		n++
		if err := s.CheckQueue(); err != nil {
			return fmt.Errorf("autoscaling reads the accept queue of [socket:%s], and it has none to read: %w", s.Name, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("autoscaling reads the accept queue of the watcher's sockets, and it has none: pass one with $(circus.sockets.NAME), or set use_sockets = true")
	}
	return nil
}

// inherited returns the sockets of specs that w's workers inherit.
func inherited(w *Watcher, specs []sockets.Spec) []sockets.Spec {
	used := w.SocketRefs()
	if w.StdinSocket != "" {
		used = append(used, w.StdinSocket)
	}
	var out []sockets.Spec
	for _, s := range specs {
		if w.UseSockets || slices.Contains(used, strings.ToLower(s.Name)) {
			out = append(out, s)
		}
	}
	return out
}

// checkAutoscale is CheckAutoscale at load time, with the line of
// autoscale.max. scaled maps each socket already read by an autoscaled
// watcher to that watcher: a second one on the same socket is warned
// about, since each sees the whole queue and would grow for all of it.
func checkAutoscale(f *fields, w *Watcher, specs []sockets.Spec, scaled map[string]string) {
	if err := CheckAutoscale(w, specs); err != nil {
		f.errorf("autoscale.max", "%v", err)
		return
	}
	if !w.Autoscale.Enabled() {
		return
	}
	for _, s := range inherited(w, specs) {
		key := strings.ToLower(s.Name)
		if other, ok := scaled[key]; ok {
			f.warnf("autoscale.max", "[socket:%s] is autoscaled by [watcher:%s] too: each watcher sees the whole queue and grows for all of it; give each its own socket", s.Name, other)
			continue
		}
		scaled[key] = w.Name
	}
}
