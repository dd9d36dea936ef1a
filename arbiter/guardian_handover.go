package arbiter

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// The guardian across an in-place upgrade. The new image is the same
// process, still the guardian's parent: it takes over the write end of the
// pipe (the same fd, its close-on-exec flag cleared) and the guardian's
// pid, and the guardian, which knows every worker already, never notices.

// guardState is the guardian as an upgrade hands it over.
type guardState struct {
	Pid  int    `json:"pid"`  // the guardian's
	WFD  int    `json:"wfd"`  // the write end of its pipe, kept open across the exec
	Kill string `json:"kill"` // how it kills, for the log
}

// guardianOut hands the running guardian over for an exec, while the
// arbiter is frozen (the reaper held, no spawn under way): the goroutine
// that keeps it ends without standing it down, and the write end stays
// open across the exec. It returns nil, nil when no guardian runs (none
// could be started, or the last one died and its replacement waits for
// its pause); guarded says whether an upgrade may go ahead at all.
func (a *Arbiter) guardianOut() (*guardState, error) {
	if a.guard == nil {
		return nil, nil
	}
	reply := make(chan *guardianProc, 1)
	a.guard.out <- reply
	g := <-reply
	<-a.guard.done
	a.guard.handedOver, a.guard.held = true, g
	if g == nil {
		return nil, nil
	}
	if err := handover.KeepFD(g.wfd); err != nil {
		a.guardianBack()
		return nil, fmt.Errorf("guardian: keep its pipe open across exec: %w", err)
	}
	return &guardState{Pid: g.pid, WFD: g.wfd, Kill: g.kill}, nil
}

// guardianBack undoes guardianOut after an exec that failed: the write end
// is closed on exec again, and the same guardian is kept as before (or,
// if none ran, one is started after the usual pause).
func (a *Arbiter) guardianBack() {
	if a.guard == nil || !a.guard.handedOver {
		return // guardianOut found no keeper: nothing to resume
	}
	g := a.guard.held
	if g != nil {
		handover.CloseOnExec(g.wfd)
	}
	a.keep(g)
}

// startGuardianFrom is startGuardian in an image started by an upgrade:
// the guardian st describes, the old image's, is adopted as this image's
// child and kept as startGuardian's would be. Without one (st nil), or
// when st does not describe a guardian's pipe, a new guardian is started,
// knowing every child adopted so far.
func (a *Arbiter) startGuardianFrom(st *guardState) {
	if st == nil {
		a.startGuardian()
		return
	}
	if err := checkGuardPipe(st.WFD); err != nil {
		a.log.Warn("guardian not adopted; a new one starts", "pid", st.Pid, "err", err)
		a.startGuardian()
		return
	}
	exits := make(chan exitStatus, 1)
	p, err := theReaper.adopt(st.Pid, exits)
	if err != nil {
		// Its pipe is left open: closing it would tell the guardian, if
		// it lives, to kill every worker.
		a.log.Warn("guardian not adopted; a new one starts", "pid", st.Pid, "err", err)
		a.startGuardian()
		return
	}
	p.Release() // signalled by nobody; its exit still comes to exits
	handover.CloseOnExec(st.WFD)
	theReaper.guardAttach(a.glink, st.WFD)
	g := &guardianProc{pid: st.Pid, wfd: st.WFD, exits: exits, kill: st.Kill}
	a.log.Info("guardian adopted", "pid", g.pid, "kill", g.kill)
	a.keep(g)
}

// checkGuardPipe says whether fd is the write end of a pipe, open for
// writing and non-blocking, as a guardian's is.
func checkGuardPipe(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fd %d: %w", fd, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("fd %d is not a pipe", fd)
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("fd %d: %w", fd, err)
	}
	if fl&unix.O_ACCMODE != unix.O_WRONLY || fl&unix.O_NONBLOCK == 0 {
		return fmt.Errorf("fd %d is not a guardian's write end (write-only, non-blocking)", fd)
	}
	return nil
}

// guarded reports whether a guardian runs and guards every live child of
// the arbiter: none was given the parent-death signal instead (spawned
// while no guardian ran), which an exec of the arbiter would fire. An
// upgrade in place may go ahead only then.
func (a *Arbiter) guarded() bool {
	return a.guard != nil && theReaper.guarded(a.glink)
}
