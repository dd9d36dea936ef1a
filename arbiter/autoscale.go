package arbiter

import (
	"fmt"
	"slices"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Autoscaling, on the watcher's loop. The arbiter's sampler (queues.go)
// reads the accept queues of every autoscaled watcher's sockets about ten
// times a second and sends each loop its sum; the loop asks its scaler
// (scaler.go) and resizes the pool as incr does, through numprocesses and
// reconcile: new workers at once, and a worker too many stopped
// gracefully (stop_signal, graceful_timeout), the oldest first. It
// decides only while the watcher is active and no reload runs; an
// operator's incr, decr or set moves the size within [min, max], and the
// autoscaler goes on from there.

// queueSample is one reading of a watcher's sockets' accept queues.
type queueSample struct {
	at      time.Time
	depth   int   // connections waiting, summed over the watcher's sockets
	backlog int   // the queues' limits, summed
	err     error // a socket that could not be read: the sample is not used
}

// ScaleStatus is what an autoscaled watcher's autoscaler sees, for
// displays (see Status).
type ScaleStatus struct {
	Min, Max int
	Queue    int       // connections waiting in its sockets' accept queues at the last sample
	Backlog  int       // those queues' limits, summed
	Sampled  time.Time // when that sample was taken; zero before the first
}

// offerQueue hands the loop a sample without waiting: one that the loop
// has not taken yet is replaced, so it always decides on the latest.
// Only the sampler calls it, so the second send cannot find the channel
// full.
func (w *Watcher) offerQueue(s queueSample) {
	select {
	case w.queuec <- s:
		return
	default:
	}
	select {
	case <-w.queuec:
	default:
	}
	select {
	case w.queuec <- s:
	default:
	}
}

// handleQueue takes a sample and resizes the pool if the scaler says so.
func (w *Watcher) handleQueue(s queueSample) {
	w.queue = s
	sc := w.scale
	if sc == nil {
		return
	}
	if s.err != nil {
		if w.queueErr == "" {
			w.log.Warn("cannot read the accept queue; not autoscaling meanwhile", "err", s.err)
		}
		w.queueErr = s.err.Error()
		sc.pause()
		return
	}
	if w.queueErr != "" {
		w.log.Info("reading the accept queue again")
		w.queueErr = ""
	}
	if w.state != Active || w.reload != nil || w.final {
		sc.pause()
		return
	}
	if to, why := sc.observe(s.at, s.depth, poolSize{w.target, w.readyCount()}); to != w.target {
		w.scaleTo(to, why)
	}
}

// readyCount counts the workers that are ready and not on their way out.
func (w *Watcher) readyCount() int {
	n := 0
	for _, p := range w.procs {
		if !p.stopping && !p.retiring && p.ready.Load() {
			n++
		}
	}
	return n
}

// scaleTo resizes the pool to n for reason, as the autoscaler's decision.
func (w *Watcher) scaleTo(n int, reason string) {
	w.noteScale(n, reason)
	w.reconcile()
	w.progress()
}

// noteScale sets the size to n and says so: every change the autoscaler
// makes is logged and published.
func (w *Watcher) noteScale(n int, reason string) {
	from := w.target
	w.target = n
	w.log.Info("autoscaling", "from", from, "to", n, "reason", reason)
	w.emit(pubsub.Event{Kind: pubsub.Scale, From: from, To: n, Reason: reason})
}

// sizeFor is the size to adopt with the new options nc: their
// numprocesses, unless the pool is autoscaled before and after and
// numprocesses is written the same (its value may differ, clamped into
// other bounds); then the size the autoscaler reached stays, within the
// new bounds (adoptAutoscale). Call it before w.cfg is replaced.
func (w *Watcher) sizeFor(nc *config.Watcher) int {
	if nc.Autoscale.Enabled() && w.cfg.Autoscale.Enabled() && nc.Options["numprocesses"] == w.cfg.Options["numprocesses"] {
		return w.target
	}
	return nc.NumProcesses
}

// adoptAutoscale brings the scaler in line with the options in effect,
// after they changed (set, reloadconfig, a reload or its abandonment),
// and the size within the new [min, max]; the caller reconciles.
func (w *Watcher) adoptAutoscale() {
	a := w.cfg.Autoscale
	if !a.Enabled() {
		w.scale = nil
		return
	}
	if w.scale == nil {
		w.scale = &scaler{}
	}
	if w.scale.cfg != a {
		w.scale.cfg = a
		w.scale.pause()
	}
	if n := a.Clamp(w.target); n != w.target {
		w.noteScale(n, fmt.Sprintf("autoscale.min..autoscale.max is now %d..%d", a.Min, a.Max))
	}
}

// publishScale tells the sampler, after each step of the loop, whether to
// sample this watcher (autoscaled and running), on which sockets, whether
// its pool is empty (a first connection then wakes the sampler at once)
// and whether it has workers to spare (it is then sampled even when
// nobody waits, so that it can shrink).
func (w *Watcher) publishScale() {
	on := w.scale != nil && (w.state == Active || w.state == Starting)
	w.scaleOn.Store(on)
	w.scaleSpare.Store(on && w.target > w.cfg.Autoscale.Min)
	if zero := on && w.target == 0 && w.empty(); !zero {
		w.scaleZero.Store(false)
	} else if !w.scaleZero.Swap(true) && w.kickQueues != nil {
		w.kickQueues()
	}
	if on {
		if cur := w.scaleSocks.Load(); cur == nil || !slices.Equal(*cur, w.socks) {
			socks := slices.Clone(w.socks)
			w.scaleSocks.Store(&socks)
		}
	}
}

// scaleStatus is the autoscaler's view for Status; nil when off.
func (w *Watcher) scaleStatus() *ScaleStatus {
	if w.scale == nil {
		return nil
	}
	a := w.cfg.Autoscale
	return &ScaleStatus{Min: a.Min, Max: a.Max, Queue: w.queue.depth, Backlog: w.queue.backlog, Sampled: w.queue.at}
}

// socketsOf is the sockets a sample of w covers.
func (w *Watcher) socketsOf() []*sockets.Socket {
	if p := w.scaleSocks.Load(); p != nil {
		return *p
	}
	return nil
}
