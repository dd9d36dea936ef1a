package arbiter

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Stopping: a watcher's stop and a worker's, stop_signal to the process
// group after before_signal, SIGKILL at graceful_timeout.

// beginStop moves the watcher to stopping and, once before_stop has run,
// sends every worker its stop signal; the stop completes in handleExit
// when the last worker is reaped. reason is why the watcher stops itself
// ("" for a stop command).
func (w *Watcher) beginStop(reason string) {
	why := reason
	if why == "" {
		why = "stop requested"
	}
	w.replyStart(fmt.Errorf("watcher %s: %w: %s", w.name, ErrStopped, why))
	if w.state == Stopped && w.empty() {
		w.finishStop()
		return
	}
	if w.state != Stopping {
		w.log.Info("stopping", "reason", why)
		w.stopReason = reason
		w.state = Stopping
		w.gate = 0
		if w.hookGate(stepStop, hookBeforeStop) {
			if w.empty() {
				w.finishStop()
			}
			return
		}
	} else if w.gate == stepStop {
		return // the workers are signalled once before_stop has run
	}
	w.stopAll()
}

// stopAll sends every worker not yet stopping its stop signal.
func (w *Watcher) stopAll() {
	for _, p := range w.procs {
		if !p.stopping {
			w.stopProc(p)
		}
	}
	if w.empty() {
		w.finishStop()
	}
}

func (w *Watcher) finishStop() {
	w.cgroupStopped()
	w.gate = 0
	if w.state != Stopped {
		w.state = Stopped
		w.log.Info("stopped")
		w.emit(pubsub.Event{Kind: pubsub.Stop})
		w.hook(hookAfterStop)
	}
	for _, r := range w.stopWaiters {
		r <- nil
	}
	w.stopWaiters = nil
	w.progress()
	if w.restartAfter {
		w.restartAfter = false
		w.beginStart(nil, false)
	}
}

// stopProc sends a worker its stop signal and arms the SIGKILL deadline.
func (w *Watcher) stopProc(p *worker) { w.stopProcWith(p, w.cfg.StopSignal) }

// stopProcWith is stopProc with sig in place of stop_signal (0: SIGTERM).
// The SIGKILL deadline runs from now, whatever before_signal takes.
func (w *Watcher) stopProcWith(p *worker, sig syscall.Signal) {
	now := time.Now()
	p.stopping = true
	w.endWatch(p)
	p.killAt = now.Add(w.cfg.GracefulTimeout)
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	var kids []int
	if w.cfg.StopChildren {
		// Listed before the group signal: a worker that dies of it at once
		// leaves a zombie whose children can no longer be listed.
		kids = childrenOf(p.Pid)
	}
	w.signal(p, sig)
	// Children still in the group were signalled with it; this reaches
	// those that left it.
	for _, kid := range kids {
		if err := syscall.Kill(kid, sig); err == nil {
			w.emit(pubsub.Event{Kind: pubsub.Kill, Pid: kid, Wid: p.Wid, Signal: int(sig)})
		}
	}
	if w.cfg.GracefulTimeout <= 0 {
		w.escalate(p)
	}
}

// signal sends sig to a worker's process group once before_signal has
// passed (at once without one); SIGKILL is never held back by the hook.
func (w *Watcher) signal(p *worker, sig syscall.Signal) {
	vars := signalVars(p, sig)
	if sig != syscall.SIGKILL && w.hookThen(hookBeforeSignal, hookDone{step: stepSignal, pid: p.Pid, sig: sig}, vars...) {
		return
	}
	if sig == syscall.SIGKILL {
		w.hook(hookBeforeSignal, vars...)
	}
	w.sendSignal(p, sig)
	w.hook(hookAfterSignal, vars...)
}

// sendSignal sends sig to a worker's process group, which reaches its
// descendants too; to the worker alone if it has left its group.
func (w *Watcher) sendSignal(p *worker, sig syscall.Signal) {
	err := p.proc.SignalGroup(sig)
	if err != nil {
		err = p.proc.Signal(sig)
	}
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		w.log.Warn("signal failed", "pid", p.Pid, "signal", sig, "err", err)
		return
	}
	w.log.Debug("signalled", "pid", p.Pid, "signal", sig)
	w.emit(pubsub.Event{Kind: pubsub.Kill, Pid: p.Pid, Wid: p.Wid, Signal: int(sig)})
}

func (w *Watcher) escalate(p *worker) {
	p.killed = true
	w.log.Warn("escalating to SIGKILL", "pid", p.Pid, "graceful_timeout", w.cfg.GracefulTimeout)
	w.signal(p, syscall.SIGKILL)
}
