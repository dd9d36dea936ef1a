package arbiter

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// The watcher's state machine. Circus's four states are the ones the wire
// shows; the loop refines them with what it waits for, and every move
// happens on the loop, in this file, in answer to a request, a reaped
// exit, a hook's result or a deadline:
//
//	stopped  --start-->  starting [before_start] --> spawning, paced by
//	                     warmup_delay, each slot [before_spawn] → spawn →
//	                     [after_spawn]; all ready --> [after_start] --> active
//	starting, active --a spawn fails for a passing reason (EAGAIN, EMFILE,
//	                     ENFILE, ENOMEM, a cgroup join)--> backoff: the same
//	                     state, spawns paused with a capped, jittered,
//	                     growing delay, never toward max_retry
//	starting, active --a spawn fails--> retried after a growing pause;
//	                     after max_retry in a row --> stopping
//	active   --a worker dies--> replaced at once; the n-th quick death in a
//	                     row of a slot waits restart_delay × 2^(n-2) (crash
//	                     loop); flapping.attempts deaths of a slot within
//	                     flapping.window --> stopping, then stopped with a
//	                     retry at retry_in (flapping), up to max_retry times
//	any      --stop-->   stopping [before_stop] → stop_signal to every
//	                     group → SIGKILL at graceful_timeout → all reaped
//	                     --> stopped [after_stop]
//
// A bracketed hook is a state too: the loop goes on with other requests,
// exits and deadlines while it runs, and a stop overtakes a start waiting
// for its hook. Requests answered here: a start at active, at the first
// failed attempt (errRetrying) or at a stop; a stop when every worker is
// reaped.

// errRetrying is what a start waiter gets when an attempt failed and the
// watcher retries it.
var errRetrying = errors.New("not started yet, retrying")

// beginStart starts a stopped watcher, or lets one that is stopping start
// again when it has stopped; reply (if not nil) is answered as Start says.
// commanded is set for an operator's start, which resets the flapping
// retries.
func (w *Watcher) beginStart(reply chan<- error, commanded bool) {
	if w.final {
		// The arbiter is shutting down: a start now (a plugin's restart,
		// a console click, a flapping retry) would leave workers that the
		// loop, told to end, waits on for ever.
		if reply != nil {
			reply <- fmt.Errorf("watcher %s: %w", w.name, ErrShutdown)
		}
		return
	}
	if commanded {
		w.flapRetries = 0
		w.retryAt = time.Time{}
	}
	switch w.state {
	case Active:
		if reply != nil {
			reply <- nil
		}
		return
	case Stopping:
		w.restartAfter = true
	case Stopped:
		w.state = Starting
		w.stopReason = ""
		w.spawnAt = time.Time{}
		w.spawnFails, w.transient, w.transErr, w.startSpawns = 0, 0, nil, 0
		w.deaths, w.crashes, w.slotAt = nil, nil, nil
		w.log.Info("starting", "numprocesses", w.target)
		w.hookGate(stepStart, hookBeforeStart)
	}
	if reply != nil {
		w.startWaiters = append(w.startWaiters, reply)
	}
	w.reconcile()
}

// replyStart answers every start waiter with err.
func (w *Watcher) replyStart(err error) {
	for _, r := range w.startWaiters {
		r <- err
	}
	w.startWaiters = nil
}

// becomeActive ends a start whose workers are all spawned and ready:
// after after_start, if the watcher has one.
func (w *Watcher) becomeActive() {
	if !w.hookGate(stepActive, hookAfterStart) {
		w.activate()
	}
}

func (w *Watcher) activate() {
	w.state = Active
	w.activeSince = time.Now()
	w.log.Info("started", "numprocesses", len(w.procs))
	w.emit(pubsub.Event{Kind: pubsub.Start})
	w.replyStart(nil)
}

// retire replaces p: it is retired first, so that reconcile spawns the
// replacement before p has even been signalled, which happens once the
// replacement is ready (handOver).
func (w *Watcher) retire(p *worker) {
	p.retiring = true
	w.endHealth(p)
	w.reconcile()
	w.handOver()
}

// live counts the workers that are not on their way out, and the slots
// whose before_spawn or spawn runs.
func (w *Watcher) live() int {
	n := len(w.spawning) + len(w.launching)
	for _, p := range w.procs {
		if !p.stopping && !p.retiring {
			n++
		}
	}
	return n
}

// reconcile brings the number of live workers to numprocesses: spawning
// while starting (paced by warmup_delay) or, once active, at once to replace
// a dead worker (unless a backoff or crash-loop pause holds spawns);
// stopping the oldest when there are too many.
func (w *Watcher) reconcile() {
	if w.state != Starting && w.state != Active || w.gate == stepStart {
		return
	}
	w.fill()
	// Active once every slot has been spawned and all are ready; a worker
	// that died meanwhile is a crash the loop replaces, not a start that
	// failed (as in Circus, whose start ends with its spawns).
	if w.state == Starting && w.gate == 0 && len(w.spawning) == 0 && len(w.launching) == 0 && w.afterSpawns == 0 &&
		w.allReady() && (w.live() >= w.target || w.startSpawns >= w.target) {
		w.becomeActive()
	}
}

// spawnHeld reports whether fill spawns nothing now, whatever the time: an
// active watcher without respawn (a reload replaces workers even so), or,
// while spawns fail, one try under way (one at a time).
func (w *Watcher) spawnHeld() bool {
	return w.state == Active && !w.cfg.Respawn && w.reload == nil ||
		(w.spawnFails > 0 || w.transient > 0) && len(w.launching) > 0
}

// fill spawns or stops workers toward numprocesses (see reconcile).
func (w *Watcher) fill() {
	target := w.target
	for w.live() < target {
		if w.spawnHeld() {
			break // until a reload, or the spawn under way, ends
		}
		if time.Now().Before(w.spawnAt) {
			return // the timer comes back here
		}
		wid, ok := w.nextSlot(time.Now())
		if !ok {
			return // every free slot is in a crash loop's pause: the timer comes back
		}
		if !w.spawnOne(wid) {
			return
		}
		if w.state == Starting && w.cfg.WarmupDelay > 0 && w.live() < target {
			w.spawnAt = time.Now().Add(w.cfg.WarmupDelay)
		}
	}
	for w.live() > target {
		var oldest *worker
		for _, p := range w.procs {
			// Ties (one clock tick) go to the lower slot, started first.
			if !p.stopping && !p.retiring && (oldest == nil || p.Started.Before(oldest.Started) ||
				p.Started.Equal(oldest.Started) && p.Wid < oldest.Wid) {
				oldest = p
			}
		}
		if oldest == nil {
			break // only slots whose before_spawn runs: dropped when it ends
		}
		w.stopProc(oldest)
	}
}

// handleHook goes on with the step that waited for a hook (see hookThen).
// A result whose step has been overtaken (a stop during before_start, a
// worker reaped before its before_signal ended) changes nothing.
func (w *Watcher) handleHook(d hookDone) {
	defer w.progress()
	gated := w.gate == d.step && w.gateSeq == d.seq
	switch d.step {
	case stepStart:
		if !gated || w.state != Starting {
			return
		}
		w.gate = 0
		if d.err != nil {
			// Refused: the watcher stays stopped, as it was.
			err := fmt.Errorf("watcher %s: start refused: %w", w.name, d.err)
			w.state = Stopped
			w.stopReason = err.Error()
			w.replyStart(err)
			return
		}
		w.reconcile()
	case stepActive:
		if !gated || w.state != Starting {
			return
		}
		w.gate = 0
		if d.err != nil {
			w.beginStop(d.err.Error())
			return
		}
		w.activate()
	case stepSpawn:
		delete(w.spawning, d.wid)
		if d.err != nil {
			if w.state == Starting || w.state == Active {
				if !w.abortReload(d.err) {
					w.beginStop(d.err.Error())
				}
			}
			return
		}
		if (w.state == Starting || w.state == Active) && w.live() < w.target {
			w.spawnNow(d.wid)
		}
		w.reconcile()
	case stepSpawned:
		w.afterSpawns--
		if d.err == nil {
			w.reconcile() // a start may have waited for it
			return
		}
		if p := w.procs[d.pid]; p != nil && !p.stopping {
			w.stopProc(p)
		}
		if w.state == Starting || w.state == Active {
			w.beginStop(d.err.Error())
		}
	case stepStop:
		if !gated || w.state != Stopping {
			return
		}
		w.gate = 0
		w.stopAll()
	case stepSignal:
		p := w.procs[d.pid]
		switch {
		case p == nil:
			// Reaped meanwhile: nothing left to signal.
			if d.wait != nil {
				d.wait.done()
			}
			return
		case d.err != nil:
			w.log.Warn("signal not sent", "pid", p.Pid, "signal", d.sig, "err", d.err)
			if d.wait != nil {
				d.wait.done()
			}
		case d.wait != nil:
			w.sendAlone(p, d.sig, d.wait)
		default:
			w.sendSignal(p, d.sig)
		}
		w.hook(hookAfterSignal, signalVars(p, d.sig)...)
	}
}

func (w *Watcher) handleExit(st exitStatus) {
	p := w.procs[st.pid]
	if p == nil {
		if len(w.launching) > 0 {
			// A worker whose spawn the loop has not heard the end of
			// yet: the exit waits for it (handleLaunched).
			w.early[st.pid] = st
			return
		}
		w.log.Warn("exit of an unknown worker", "pid", st.pid)
		return
	}
	now := time.Now()
	delete(w.procs, st.pid)
	w.endWatch(p)
	// Whatever the worker left in its group is already gone, as with
	// systemd's control-group kill mode: the reaper killed it before it
	// reaped the worker, while the group's id was still its own (issue
	// 14, item 7).
	p.proc.Release()
	w.cgroupExited(p)
	w.countExit(p, st.status, now)
	code := exitCode(st.status)
	w.emit(pubsub.Event{Kind: pubsub.Reap, Pid: p.Pid, Wid: p.Wid, ExitCode: code})
	w.reapHooks(p, st)
	if p.stopping {
		w.log.Info("reaped", "pid", p.Pid, "exit_code", code)
	} else {
		w.log.Warn("worker died", "pid", p.Pid, "wid", p.Wid, "exit_code", code, "age", now.Sub(p.Started).Round(time.Millisecond))
		if !p.ready.Load() && !p.retiring && (w.reload == nil || !slices.Contains(w.reload.old, p.Pid)) {
			// A new worker that died before it was ready did not start:
			// during a reload the reload is abandoned and the old workers
			// stay; otherwise it is a failed spawn, retried after a pause
			// and counted against max_retry, as a ready_timeout is, not a
			// crash respawned at once for ever (a death a second is below
			// the flapping limit).
			p.stopping = true // it is gone: nothing to signal
			w.notReady(p, fmt.Errorf("pid %d exited (code %d) before it was ready", p.Pid, code))
			w.progress()
			return
		}
		if w.flapped(p.Wid) {
			return
		}
		if w.state == Active && !w.cfg.Respawn && w.empty() {
			w.state = Stopping
			w.finishStop()
			return
		}
		w.crashed(p, st.status, now)
	}
	if w.state == Stopping {
		if w.empty() {
			w.finishStop()
		}
		w.progress()
		return
	}
	w.reconcile()
	w.progress()
}

// tick handles every deadline that has passed: SIGKILL escalation, max_age
// recycling, the flapping retry and paced spawns.
func (w *Watcher) tick() {
	now := time.Now()
	for _, p := range w.procs {
		switch {
		case p.stopping && !p.killed && !now.Before(p.killAt):
			w.escalate(p)
		case !p.stopping && !p.retiring && !p.expireAt.IsZero() && !now.Before(p.expireAt):
			w.log.Info("recycling", "pid", p.Pid, "reason", "max_age", "age", now.Sub(p.Started).Round(time.Second))
			p.cause = ReasonMaxAge
			w.retire(p)
		}
	}
	w.readinessDeadlines(now)
	w.killStuck(now)
	w.startSampling(now)
	w.pollOOM(now)
	w.sweepDead(now)
	if w.state == Stopped && !w.retryAt.IsZero() && !now.Before(w.retryAt) {
		w.retryAt = time.Time{}
		w.log.Info("flapping: retrying", "retry", w.flapRetries)
		w.beginStart(nil, false)
	}
	w.reconcile()
	w.progress()
}

// rearm sets the timer to the earliest deadline the loop is waiting for.
func (w *Watcher) rearm() {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if (w.state == Starting || w.state == Active) && w.live() < w.target && !w.spawnHeld() {
		// A wait that has passed counts too (the tick it owed may have been
		// stopped above, unread), unless fill is held whatever the time:
		// the timer would then fire at once, and again, for ever.
		earlier(w.spawnAt)
		earlier(w.slotPause(time.Time{}))
	}
	if w.reload != nil {
		earlier(w.reload.pauseUntil)
	}
	for _, p := range w.procs {
		if p.stopping && !p.killed {
			earlier(p.killAt)
		} else if !p.stopping && !p.retiring {
			earlier(p.expireAt)
		}
		earlier(w.readinessNext(p))
	}
	earlier(w.limitNext())
	earlier(w.stuckNext())
	earlier(w.oomNext())
	earlier(w.sweepNext())
	if w.state == Stopped {
		earlier(w.retryAt)
	}
	w.timer.Stop()
	if !next.IsZero() {
		w.timer.Reset(max(time.Until(next), 0))
	}
}

// cancelQueued answers the reloads queued behind the running one with err:
// a stop overtakes them.
func (w *Watcher) cancelQueued(err error) {
	for _, q := range w.queued {
		if q.reply != nil {
			q.reply <- err
		}
	}
	w.queued = nil
}
