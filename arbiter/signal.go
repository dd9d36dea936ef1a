package arbiter

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"time"
)

// ErrNoProcess is returned for a pid that is not a worker of the watcher.
var ErrNoProcess = errors.New("no such process")

// Signal sends sig to the watcher's workers, as Circus's signal command
// does: to the worker pid (0: every worker); with children, to its
// children instead; with recursive, to the worker and all its descendants.
// It is not a stop: nothing is escalated, and a worker that dies of it is
// replaced as any other.
//
// With a before_signal hook, a worker's signal goes once the hook has
// passed; Signal returns when every signal has gone (or was vetoed).
func (w *Watcher) Signal(ctx context.Context, pid int, sig syscall.Signal, children, recursive bool) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, signalReq{pid: pid, sig: sig, children: children, recursive: recursive, reply: reply}, reply)
}

// signalCmd is signalReq on the loop: see Signal.
func (w *Watcher) signalCmd(r signalReq) {
	pid, sig, children, recursive, reply := r.pid, r.sig, r.children, r.recursive, r.reply
	var targets []*worker
	for _, p := range w.procs {
		if pid == 0 || p.Pid == pid {
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 && pid != 0 {
		reply <- fmt.Errorf("watcher %s: pid %d: %w", w.name, pid, ErrNoProcess)
		return
	}
	sw := &signalWait{reply: reply, left: 1}
	for _, p := range targets {
		var pids []int
		if !children {
			pids = append(pids, p.Pid)
		}
		if children || recursive {
			pids = append(pids, descendants(p.Pid, recursive)...)
		}
		for _, q := range pids {
			if q == p.Pid {
				w.signalOne(p, sig, sw)
			} else if e := syscall.Kill(q, sig); e != nil && e != syscall.ESRCH {
				sw.fail(fmt.Errorf("signal %d: %w", q, e))
			}
		}
		w.log.Info("signalled", "pid", p.Pid, "signal", sig, "children", children, "recursive", recursive)
	}
	sw.done() // the one held while the signals were sent
}

// signalWait is a signal command waiting for the before_signal hooks of
// the workers it signals: it is answered, with the first failure, when
// the last one is done.
type signalWait struct {
	left  int
	err   error
	reply chan<- error
}

func (s *signalWait) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *signalWait) done() {
	if s.left--; s.left == 0 {
		s.reply <- s.err
	}
}

// SignalChild sends sig to childpid, a direct child of the worker pid, as
// Circus's signal command does with childpid. A childpid that is not a
// child of that worker is ErrNoProcess: the arbiter signals only what it
// supervises.
func (w *Watcher) SignalChild(ctx context.Context, pid, childpid int, sig syscall.Signal) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, signalChildReq{pid: pid, child: childpid, sig: sig, reply: reply}, reply)
}

// signalChild is signalChildReq on the loop: see SignalChild.
func (w *Watcher) signalChild(r signalChildReq) {
	if _, ok := w.procs[r.pid]; !ok {
		r.reply <- fmt.Errorf("watcher %s: pid %d: %w", w.name, r.pid, ErrNoProcess)
		return
	}
	if !slices.Contains(childrenOf(r.pid), r.child) {
		r.reply <- fmt.Errorf("watcher %s: pid %d has no child %d: %w", w.name, r.pid, r.child, ErrNoProcess)
		return
	}
	if err := syscall.Kill(r.child, r.sig); err != nil {
		r.reply <- fmt.Errorf("signal %d: %w", r.child, err)
		return
	}
	w.log.Info("signalled", "pid", r.child, "parent", r.pid, "signal", r.sig)
	r.reply <- nil
}

// descendants lists the children of pid, and with all their descendants
// too, children first.
func descendants(pid int, all bool) []int {
	var out []int
	queue := childrenOf(pid)
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		out = append(out, q)
		if all {
			queue = append(queue, childrenOf(q)...)
		}
	}
	return out
}

// Kill stops the worker pid (0: every worker) gracefully, as Circus's kill
// command does: its stop signal to its group, SIGKILL after the watcher's
// graceful_timeout (or timeout, when positive); sig, when not 0, replaces
// the stop signal. Killed workers are
// replaced, each replacement started before its old worker is signalled.
// It returns when the killed workers have been reaped.
func (w *Watcher) Kill(ctx context.Context, pid int, sig syscall.Signal, timeout time.Duration) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, killReq{pid: pid, sig: sig, timeout: timeout, reply: reply}, reply)
}

// kill is killReq on the loop: see Kill.
func (w *Watcher) kill(r killReq) {
	pid, sig, timeout, reply := r.pid, r.sig, r.timeout, r.reply
	var targets []*worker
	for _, p := range w.procs {
		if !p.stopping && !p.retiring && (pid == 0 || p.Pid == pid) {
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 {
		if pid == 0 {
			reply <- nil
		} else {
			reply <- fmt.Errorf("watcher %s: pid %d: %w", w.name, pid, ErrNoProcess)
		}
		return
	}
	for _, p := range targets {
		p.retiring = true
	}
	w.reconcile()
	for _, p := range targets {
		if sig == 0 {
			sig = w.cfg.StopSignal
		}
		w.stopProcWith(p, sig)
		if timeout > 0 {
			p.killAt = time.Now().Add(timeout)
		}
	}
	w.killWaiters = append(w.killWaiters, killWait{pids: pidsOf(targets), reply: reply})
}

type killWait struct {
	pids  []int
	reply chan<- error
}

func pidsOf(ps []*worker) []int {
	out := make([]int, len(ps))
	for i, p := range ps {
		out[i] = p.Pid
	}
	return out
}
