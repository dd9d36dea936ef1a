package logs

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// An upgrade in place hands the workers' pipes to the next image of the
// arbiter (Detach, then Adopt there, or Resume here when the exec fails).
// The bytes a reader has taken from a pipe and not yet written are the
// start of a line not yet ended; they travel in PipeState, and whatever is
// still in the pipe is read by the next image. Nothing else is buffered on
// the way to a destination: a batch of lines is written out before its
// reader reads again, so once every reader has stopped, every line read is
// written.

// PipeState is one worker's stream as Detach leaves it: the pipe's read
// end, open under FD with close-on-exec cleared, and the bytes of a line
// that had begun but not ended when its reader stopped.
type PipeState struct {
	Pid     int    `json:"pid"`
	Stream  Stream `json:"stream"`
	FD      int    `json:"fd"`
	Partial []byte `json:"partial,omitempty"`
}

// detachWait is how long Detach waits for every reader to stop. A reader
// stops between two reads, so only one still writing its lines holds
// Detach: one stuck in a destination that takes nothing (a FIFO nobody
// reads, a console whose reader stopped) holds it past this.
const detachWait = stuckAfter

// handOver is an Output's state of hand-over, guarded by its mu.
type handOver struct {
	detached bool          // from Detach until Resume (or a Detach that fails)
	quiet    chan struct{} // closed when the last reader stops; nil once closed
	held     []heldPipe    // pipes whose readers stopped, in that order
	ringFD   int           // the memfd of RingState, until Resume; -1: none
}

// heldPipe is a pipe whose reader a Detach stopped.
type heldPipe struct {
	f       *os.File
	fd      int
	pid     int
	s       Stream
	partial []byte
}

// startLocked reads r from partial on, or holds it for Resume while the
// Output is detached (a worker started after Detach, which the caller
// should have prevented: its pipe is not in the state Detach returned).
func (o *Output) startLocked(r *os.File, pid int, s Stream, partial []byte) {
	if o.hand.detached {
		o.hand.held = append(o.hand.held, heldPipe{f: r, fd: fdOf(r), pid: pid, s: s, partial: partial})
		return
	}
	o.pipes[r] = s
	o.wg.Go(func() { o.read(r, pid, s, partial) })
}

// quietLocked lets Detach go on when the last reader has stopped.
func (o *Output) quietLocked() {
	if o.hand.quiet != nil && len(o.pipes) == 0 {
		close(o.hand.quiet)
		o.hand.quiet = nil
	}
}

// hold takes the pipe of a reader that Detach woke, with the start of the
// line it holds, and reports whether the reader stops; it reads on when
// the Detach was given up before it got here.
func (o *Output) hold(r *os.File, pid int, s Stream, partial []byte) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.hand.detached {
		return false
	}
	delete(o.pipes, r)
	var line []byte // nil, not empty: none
	if len(partial) > 0 {
		line = slices.Clone(partial)
	}
	o.hand.held = append(o.hand.held, heldPipe{f: r, fd: fdOf(r), pid: pid, s: s, partial: line})
	o.quietLocked()
	return true
}

// Detach stops every reader of every worker pipe at once and returns the
// pipes, for an upgrade in place: each pipe stays open with close-on-exec
// cleared, and the line its reader had begun is in Partial. Lines the
// workers write from now on wait in their pipes; nothing is read until
// Resume (or the next image's Adopt). Pipes ended meanwhile are not in
// the state; their workers' output is complete.
//
// A reader stops between two reads, after it has written what it read:
// nothing read stays unwritten. One that is still writing after a second
// (its destination takes nothing: a FIFO nobody reads, a blocked console)
// makes Detach fail, naming the destination, with every reader reading
// again as before: the upgrade is refused rather than a line lost, split
// or written twice.
func (o *Output) Detach() ([]PipeState, error) {
	o.mu.Lock()
	if o.hand.detached {
		o.mu.Unlock()
		return nil, errors.New("worker output: already detached")
	}
	o.hand.detached = true
	quiet := make(chan struct{})
	o.hand.quiet = quiet
	o.quietLocked()
	// A deadline in the past wakes a reader waiting in the poller and
	// makes its next read fail at once, without closing the pipe.
	for r := range o.pipes {
		r.SetReadDeadline(time.Unix(1, 0))
	}
	o.mu.Unlock()

	t := time.NewTimer(detachWait)
	defer t.Stop()
	select {
	case <-quiet:
	case <-t.C:
		o.mu.Lock()
		stuck := o.stuckLocked()
		o.mu.Unlock()
		if stuck != "" {
			o.Resume()
			return nil, fmt.Errorf("worker output: still writing to %s after %v", stuck, detachWait)
		}
	}

	o.mu.Lock()
	defer o.mu.Unlock()
	states := make([]PipeState, 0, len(o.hand.held))
	for _, h := range o.hand.held {
		if err := handover.KeepFD(h.fd); err != nil {
			o.resumeLocked()
			return nil, fmt.Errorf("worker output: pid %d %s: fd %d: %w", h.pid, h.s, h.fd, err)
		}
		states = append(states, PipeState{Pid: h.pid, Stream: h.s, FD: h.fd, Partial: h.partial})
	}
	slices.SortFunc(states, func(a, b PipeState) int {
		return cmp.Or(cmp.Compare(a.Pid, b.Pid), cmp.Compare(a.Stream, b.Stream))
	})
	return states, nil
}

// stuckLocked names the destinations of the readers still running, "" when
// there are none.
func (o *Output) stuckLocked() string {
	var names []string
	for _, s := range o.pipes {
		name := s.String() + " stream"
		if p := o.dests[s].Load().Path(); p != "" {
			name += " " + p
		}
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Resume starts the readers Detach stopped again, on the same pipes, each
// with the line it had begun (the exec of an upgrade failed), and sets
// close-on-exec on the pipes again. Without a Detach it does nothing.
func (o *Output) Resume() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.resumeLocked()
}

func (o *Output) resumeLocked() {
	if !o.hand.detached {
		return
	}
	o.hand.detached, o.hand.quiet = false, nil
	if o.hand.ringFD >= 0 {
		unix.Close(o.hand.ringFD)
		o.hand.ringFD = -1
	}
	// A reader that never stopped (stuck writing) reads on; one that
	// woke meanwhile finds the Output no longer detached.
	for r := range o.pipes {
		r.SetReadDeadline(time.Time{})
	}
	for _, h := range o.hand.held {
		handover.CloseOnExec(h.fd)
		h.f.SetReadDeadline(time.Time{})
		o.startLocked(h.f, h.pid, h.s, h.partial)
	}
	o.hand.held = nil
}

// dropHeld closes the pipes of a Detach never resumed (Close after a
// failed upgrade that did not call Resume).
func (o *Output) dropHeld() {
	o.mu.Lock()
	held := o.hand.held
	o.hand.held, o.hand.detached = nil, false
	if o.hand.ringFD >= 0 {
		unix.Close(o.hand.ringFD)
		o.hand.ringFD = -1
	}
	o.mu.Unlock()
	for _, h := range held {
		h.f.Close()
		o.ring.detach(h.pid)
	}
}

// Adopt starts reading the pipes an earlier image of the arbiter handed
// over (its Detach's states), each from the line it had begun, and keeps
// their output for Tail and Follow as Pipes.Start does. Call
// [Output.RestoreRing] first to carry the recent output over too.
//
// Every fd is checked first: it must be the read end of a pipe. Those that
// are not are left alone (the fd is not the Output's to close), and the
// error names each; the others are read all the same.
func (o *Output) Adopt(states []PipeState) error {
	var errs []error
	type adopted struct {
		f  *os.File
		st PipeState
	}
	var ok []adopted
	seen := map[int]bool{}
	perPid := map[int]int{}
	for _, st := range states {
		err := checkPipe(st)
		if err == nil && seen[st.FD] {
			err = errors.New("fd named twice")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("worker output: pid %d %s: fd %d: %w", st.Pid, st.Stream, st.FD, err))
			continue
		}
		seen[st.FD] = true
		perPid[st.Pid]++
		// Non-blocking, so NewFile reads it through the poller.
		ok = append(ok, adopted{os.NewFile(uintptr(st.FD), "|0"), st})
	}
	for pid, n := range perPid {
		o.ring.attach(pid, n)
	}
	o.ring.settle()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range ok {
		o.startLocked(a.f, a.st.Pid, a.st.Stream, a.st.Partial)
	}
	return errors.Join(errs...)
}

// checkPipe checks that st names the read end of a pipe and readies it:
// non-blocking (it is the same open file the last image read, but a pipe
// made elsewhere may not be), close-on-exec set again.
func checkPipe(st PipeState) error {
	if st.Stream != Stdout && st.Stream != Stderr {
		return fmt.Errorf("no stream %d", st.Stream)
	}
	if st.FD < 3 {
		return errors.New("not a pipe's fd")
	}
	var sb unix.Stat_t
	if err := unix.Fstat(st.FD, &sb); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFIFO {
		return fmt.Errorf("not a pipe (mode %#o)", sb.Mode&unix.S_IFMT)
	}
	fl, err := unix.FcntlInt(uintptr(st.FD), unix.F_GETFL, 0)
	if err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	if fl&unix.O_ACCMODE != unix.O_RDONLY {
		return errors.New("not the read end of its pipe")
	}
	if err := unix.SetNonblock(st.FD, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	handover.CloseOnExec(st.FD)
	return nil
}

// fdOf returns f's descriptor without making it blocking, as Fd would.
func fdOf(f *os.File) int {
	fd := -1
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(u uintptr) { fd = int(u) })
	}
	return fd
}
