package arbiter

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Restart accounting: what an operator (circusctl status, the console) and
// a metrics scraper read to tell a pool that serves from one that keeps
// dying, as supervisorctl's "exited: web_00 (terminated by SIGKILL; not
// expected)" and systemctl's NRestarts do.

// The reasons a worker's death is counted for, the keys of
// [Status.Restarts] and [ExitInfo.Reason]. The set is fixed and small:
// metrics label their counters with it.
const (
	// ReasonExit is a non-zero exit the arbiter did not ask for.
	ReasonExit = "exit"
	// ReasonSignal is a death by a signal the arbiter did not send to
	// stop the worker (an operator's kill -9, a crash's SIGSEGV).
	ReasonSignal = "signal"
	// ReasonClean is an exit with status 0 the arbiter did not ask for.
	ReasonClean = "clean"
	// ReasonOOM is a SIGKILL from the kernel's OOM killer, seen in the
	// worker's cgroup; without cgroups such a death is ReasonSignal.
	ReasonOOM = "oom"
	// ReasonUnhealthy is a worker the arbiter replaced after failed
	// health checks, a watchdog that starved, or for not becoming ready
	// within ready_timeout.
	ReasonUnhealthy = "unhealthy"
	// ReasonLimits is a worker the arbiter replaced for staying over
	// limit.max_rss or limit.max_cpu.
	ReasonLimits = "limits"
	// ReasonMaxAge is a worker the arbiter recycled at max_age.
	ReasonMaxAge = "max_age"
)

// Reasons lists every reason a death is counted for, in a fixed order.
var Reasons = []string{ReasonExit, ReasonSignal, ReasonClean, ReasonOOM, ReasonUnhealthy, ReasonLimits, ReasonMaxAge}

// ExitInfo is one worker's death that its watcher counted in Restarts.
type ExitInfo struct {
	Pid, Wid int
	// Code is the exit status, -1 if a signal killed the worker.
	Code int
	// Signal is the signal that killed it, 0 if it exited.
	Signal syscall.Signal
	// Expected is set when the arbiter asked for the death (ReasonUnhealthy,
	// ReasonLimits, ReasonMaxAge): the worker was replaced on purpose.
	Expected bool
	Reason   string // one of [Reasons]
	Time     time.Time
}

// restarts is a watcher's restart accounting, owned by its loop and kept
// for the life of the Watcher (a reloadconfig that keeps the watcher keeps
// it), so that the counters only grow.
type restarts struct {
	byReason map[string]uint64
	bySlot   map[int]uint64
	last     *ExitInfo
	// oomAt is when an OOM kill was last seen in the watcher's cgroups,
	// and not yet put down to a worker's death.
	oomAt time.Time
}

// countExit records the death of p, reaped at now with status, if it
// counts: a death the arbiter did not ask for, or a replacement it made
// on purpose (p.cause). A death asked for by a stop, a reload, a decr or
// a kill command is not a restart.
func (w *Watcher) countExit(p *worker, status unix.WaitStatus, now time.Time) {
	e := ExitInfo{Pid: p.Pid, Wid: p.Wid, Code: -1, Time: now}
	if status.Signaled() {
		e.Signal = status.Signal()
	} else {
		e.Code = status.ExitStatus()
	}
	switch {
	case p.stopping && p.cause != "":
		e.Reason, e.Expected = p.cause, true
	case p.stopping:
		return
	case e.Signal == syscall.SIGKILL && w.oomKilled(now):
		e.Reason = ReasonOOM
	case e.Signal != 0:
		e.Reason = ReasonSignal
	case e.Code == 0:
		e.Reason = ReasonClean
	default:
		e.Reason = ReasonExit
	}
	r := &w.restarts
	if r.byReason == nil {
		r.byReason, r.bySlot = map[string]uint64{}, map[int]uint64{}
	}
	r.byReason[e.Reason]++
	r.bySlot[e.Wid]++
	r.last = &e
}

// oomKilled reports whether an OOM kill seen in the watcher's cgroups,
// at this exit or by the last poll, explains a SIGKILL reaped at now, and
// uses it up.
func (w *Watcher) oomKilled(now time.Time) bool {
	at := w.restarts.oomAt
	if at.IsZero() || now.Sub(at) > 2*oomPoll {
		return false
	}
	w.restarts.oomAt = time.Time{}
	return true
}

// restartStatus fills st's restart accounting, copies that the caller may
// keep.
func (w *Watcher) restartStatus(st *Status) {
	r := &w.restarts
	st.Restarts = make(map[string]uint64, len(r.byReason))
	for k, v := range r.byReason {
		st.Restarts[k] = v
	}
	if r.last != nil {
		e := *r.last
		st.LastExit = &e
	}
	if w.state == Active {
		st.Since = w.activeSince
	}
	for i := range st.Procs {
		st.Procs[i].Restarts = r.bySlot[st.Procs[i].Wid]
	}
}
