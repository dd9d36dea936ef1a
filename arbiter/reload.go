package arbiter

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// reloadOp is a graceful reload in progress: every worker that ran when it
// began (old) is replaced, the replacement started before the old worker
// is signalled, so that capacity never dips.
type reloadOp struct {
	old        []int // pids to replace, in start order
	sequential bool
	reply      chan<- error
	// Sequential only: the old worker being replaced now (0: none), and
	// when the next may begin (warmup_delay after the last one's reap).
	current    int
	pauseUntil time.Time
	// What the watcher ran before, restored if the new workers cannot be
	// started at all: the old ones then keep serving.
	prevCfg    *config.Watcher
	prevSocks  []*sockets.Socket
	prevTarget int
	// target is the size the reload set: an incr or decr since changed
	// it, and an abandoned reload then keeps the operator's size.
	target int
}

// Reload replaces every worker gracefully and returns when the old ones
// are gone: all new workers first, then the old ones stopped (Circus's
// graceful reload), or with sequential one at a time, warmup_delay apart. A
// stopped watcher is started. With send_hup the workers are sent SIGHUP
// instead, and stay. The watcher publishes reload when done.
func (w *Watcher) Reload(ctx context.Context, sequential bool) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, reloadReq{reply: reply, sequential: sequential, hup: true}, reply)
}

// Restart is Reload replacing every worker even with send_hup: new workers
// first, then the old ones stopped.
func (w *Watcher) Restart(ctx context.Context) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, reloadReq{reply: reply}, reply)
}

// reconfigure is Reload with new options and sockets: the new workers get
// them, the old ones keep theirs until they stop.
func (w *Watcher) reconfigure(ctx context.Context, cfg *config.Watcher, socks []*sockets.Socket) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, reloadReq{reply: reply, cfg: cfg, socks: socks}, reply)
}

// Incr changes the number of workers by delta (negative: fewer, never
// below 0) and returns the new numprocesses once the pool has that many
// workers running and none of the removed ones left; a stopped watcher
// keeps it for its next start. A singleton watcher is not resized (as in
// Circus).
func (w *Watcher) Incr(ctx context.Context, delta int) (int, error) {
	n, reply := make(chan int, 1), make(chan error, 1)
	size, err := call(ctx, w, incrReq{delta: delta, n: n, reply: reply}, n)
	if err != nil {
		return 0, err
	}
	select {
	case err := <-reply:
		return size, err
	case <-ctx.Done():
		return size, ctx.Err()
	}
}

// setNumProcesses adopts cfg, which differs from the watcher's options in
// numprocesses alone, and resizes the pool to it in place, as Circus's
// reloadconfig does; it returns when the pool has that size.
func (w *Watcher) setNumProcesses(ctx context.Context, cfg *config.Watcher) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, resizeReq{cfg: cfg, reply: reply}, reply)
}

// reloadReq is a reload (Reload, Restart, reconfigure), and a reload
// waiting for the one in progress: with new options and sockets (cfg not
// nil) or not; hup lets send_hup turn it into a SIGHUP to each worker.
type reloadReq struct {
	reply           chan<- error
	cfg             *config.Watcher
	socks           []*sockets.Socket
	sequential, hup bool
}

// beginReload starts a reload, or queues it behind the one in progress.
func (w *Watcher) beginReload(reply chan<- error, cfg *config.Watcher, socks []*sockets.Socket, sequential, hup bool) {
	if w.reload != nil {
		// One at a time, in order: this one starts when the running one
		// ends, unless a stop cancels it first.
		w.queued = append(w.queued, reloadReq{reply: reply, cfg: cfg, socks: socks, sequential: sequential, hup: hup})
		return
	}
	w.endCrashPause()
	prevCfg, prevSocks, prevTarget := w.cfg, w.socks, w.target
	if cfg != nil {
		w.target = w.sizeFor(cfg)
		w.cfg, w.socks = cfg, socks
		w.adoptAutoscale()
	}
	if w.state == Stopped || w.state == Stopping {
		w.beginStart(reply, true)
		return
	}
	if hup && w.cfg.SendHup {
		// send_hup: the workers reload themselves (a server that re-reads
		// its code on SIGHUP); nothing is replaced.
		for _, p := range w.procs {
			if !p.stopping && !p.retiring {
				if err := p.proc.Signal(syscall.SIGHUP); err != nil {
					w.log.Warn("signal failed", "pid", p.Pid, "signal", syscall.SIGHUP, "err", err)
				}
			}
		}
		w.log.Info("reloaded", "send_hup", true)
		w.emit(pubsub.Event{Kind: pubsub.Reload})
		reply <- nil
		return
	}
	op := &reloadOp{sequential: sequential, reply: reply, prevCfg: prevCfg, prevSocks: prevSocks, prevTarget: prevTarget, target: w.target}
	for _, p := range w.procs {
		if !p.stopping && !p.retiring {
			op.old = append(op.old, p.Pid)
		}
	}
	slices.SortFunc(op.old, func(a, b int) int { return w.procs[a].Started.Compare(w.procs[b].Started) })
	w.reload = op
	w.log.Info("reloading", "workers", len(op.old), "sequential", sequential)
	if !sequential {
		for _, pid := range op.old {
			w.procs[pid].retiring = true
		}
		w.reconcile()
	}
	w.progress()
}

// progress moves along whatever waits for the pool to change: retiring
// workers whose replacements are ready, a reload in progress, and Incr
// calls waiting for the pool to reach its size. The loop calls it after
// every reap, spawn and deadline.
func (w *Watcher) progress() {
	if w.state == Active || w.state == Starting {
		w.handOver()
	}
	w.progressReload()
	keep := w.killWaiters[:0]
	for _, k := range w.killWaiters {
		// Answered once the replacements' spawns have ended too.
		gone := len(w.launching) == 0
		for _, pid := range k.pids {
			if _, ok := w.procs[pid]; ok {
				gone = false
			}
		}
		if gone {
			k.reply <- nil
		} else {
			keep = append(keep, k)
		}
	}
	w.killWaiters = keep
	// A stopped watcher keeps the new size for its next start, as Circus
	// does; a running one answers once its pool has that size.
	if len(w.scaleWaiters) > 0 && (w.state != Active && w.state != Starting || w.settled()) {
		for _, r := range w.scaleWaiters {
			r <- nil
		}
		w.scaleWaiters = nil
	}
}

// settled reports whether the pool is at its size, every worker ready,
// with nothing on its way out.
func (w *Watcher) settled() bool {
	if w.live() != w.target || len(w.launching) > 0 || len(w.spawning) > 0 {
		return false
	}
	for _, p := range w.procs {
		if p.stopping || p.retiring || !p.ready.Load() {
			return false
		}
	}
	return true
}

func (w *Watcher) progressReload() {
	op := w.reload
	if op == nil {
		return
	}
	if w.state != Active && w.state != Starting {
		// Stopped meanwhile (a stop command, flapping, spawn failures).
		w.endReload(fmt.Errorf("watcher %s: reload interrupted: %w", w.name, ErrStopped))
		return
	}
	alive := func(pid int) bool { _, ok := w.procs[pid]; return ok }
	// The old workers are retiring: handOver stops them once enough new
	// ones are ready.
	if op.sequential {
		if op.current != 0 {
			if alive(op.current) {
				return
			}
			op.current = 0
			op.pauseUntil = time.Now().Add(w.cfg.WarmupDelay)
		}
		if time.Now().Before(op.pauseUntil) {
			return // the timer comes back here
		}
		for _, pid := range op.old {
			p := w.procs[pid]
			if p == nil || p.stopping {
				continue
			}
			p.retiring = true
			w.reconcile()
			if w.live() < w.target {
				p.retiring = false // no replacement yet (spawn failing): keep it
				return
			}
			op.current = pid
			w.handOver()
			return
		}
	}
	if slices.ContainsFunc(op.old, alive) {
		return
	}
	w.log.Info("reloaded", "replaced", len(op.old))
	w.emit(pubsub.Event{Kind: pubsub.Reload})
	w.endReload(nil)
}

func (w *Watcher) endReload(err error) {
	op := w.reload
	w.reload = nil
	if op.reply != nil {
		op.reply <- err
	}
	if len(w.queued) > 0 {
		next := w.queued[0]
		w.queued = w.queued[1:]
		w.beginReload(next.reply, next.cfg, next.socks, next.sequential, next.hup)
	}
}

// abortReload gives up a reload whose new workers cannot be spawned (err,
// max_retry times in a row) while old workers still run: the watcher goes
// back to what it ran before, the old workers stay, any new one already
// started is stopped, and the reload fails. It reports false when there is
// no such reload, and the watcher then stops as usual.
func (w *Watcher) abortReload(err error) bool {
	op := w.reload
	if op == nil {
		return false
	}
	var kept int
	for _, pid := range op.old {
		if p := w.procs[pid]; p != nil && !p.stopping {
			kept++
		}
	}
	if kept == 0 {
		return false
	}
	w.cfg, w.socks = op.prevCfg, op.prevSocks
	if w.target == op.target {
		w.target = op.prevTarget
	}
	w.adoptAutoscale()
	w.spawnFails = 0
	w.spawnAt = time.Time{}
	for _, p := range w.procs {
		switch {
		case slices.Contains(op.old, p.Pid):
			p.retiring = false
		case !p.stopping:
			w.stopProc(p) // a new worker: of the version that failed
		}
	}
	w.log.Error("reload abandoned: the new workers cannot start; the old ones keep running", "err", err, "kept", kept)
	w.endReload(fmt.Errorf("watcher %s: reload abandoned, the old workers keep running: new workers cannot start: %w", w.name, err))
	w.reconcile()
	return true
}
