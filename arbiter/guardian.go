package arbiter

/*
#include <stdlib.h>
#include "guardian.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
)

// The guardian kills what the arbiter started when the arbiter dies
// without shutting down (SIGKILL, the OOM killer, a crash): every worker
// and its process group, and the arbiter's cgroup tree where it has one, so
// that nothing it started outlives it, the daemons its workers detach
// included (which would run on, holding the sockets, until the next
// arbiter sweeps the tree). It replaces the parent-death signal, which an
// exec of the arbiter would fire (it is tied to the forking thread, and
// execve ends every other thread: kernel-facts.md §4), and which reaches a
// worker alone. guardian.c says how it is made and what it holds;
// guardlink.go how it learns the workers.
//
// The arbiter holds the write end of a pipe whose read end the guardian
// reads: the workers' add and remove records, and at shutdown, once the
// workers are gone and the tree removed, the stand-down record, after
// which the guardian exits 0 and the reaper reaps it as the arbiter's own
// (no orphan event). The kernel closes the write end of a killed arbiter,
// and end of file without the stand-down tells the guardian to kill.
//
// The guardian also holds the tree's locks (cgroups.Tree.LockFDs): another
// arbiter sweeping beside the tree (one in a container, or the next one
// here) leaves it alone until the guardian has killed it and exited.
//
// An in-place upgrade (the arbiter executing its new binary, same pid)
// keeps the guardian (guardianOut, guardian_handover.go): the write end,
// its close-on-exec flag cleared, and the guardian's pid go to the new
// image, which is still the guardian's parent; nothing ties the guardian
// to a thread.

// guardRestart is the first pause before a guardian that died while the
// arbiter runs (someone killed it) is replaced; it doubles, up to
// guardRestartMax, while replacements die within guardRestartMax, so that
// one that cannot live does not fork and log every second. guardStandDown
// bounds the wait for a guardian to exit once told to stand down.
const (
	guardRestart    = time.Second
	guardRestartMax = time.Minute
	guardStandDown  = 5 * time.Second
)

// The records of the guardian's pipe (guardian.h).
const (
	guardAdd          byte = C.RM_GUARD_ADD
	guardRemove       byte = C.RM_GUARD_REMOVE
	guardStandDownRec byte = C.RM_GUARD_STAND_DOWN
)

// guardianProc is a running guardian seen from the arbiter.
type guardianProc struct {
	pid   int
	wfd   int             // the write end of its pipe; -1 once closed
	exits chan exitStatus // its exit, from the reaper
	kill  string          // how it kills, for the log
}

// guardian is the Run goroutine's handle on the goroutine that keeps a
// guardian running (keepGuardian).
type guardian struct {
	stop chan struct{}
	out  chan chan *guardianProc // guardianOut: the keeper gives its guardian back, and ends
	done chan struct{}
	// Set by guardianOut once the keeper has ended: the guardian it
	// kept (nil: none ran), which guardianBack keeps again.
	handedOver bool
	held       *guardianProc
}

// guardMethod is how a guardian empties the tree (guardian.h).
type guardMethod C.int

const (
	guardV2Kill   guardMethod = C.RM_GUARD_V2_KILL
	guardV2Freeze guardMethod = C.RM_GUARD_V2_FREEZE
	guardV1Freeze guardMethod = C.RM_GUARD_V1_FREEZE
	guardLoop     guardMethod = C.RM_GUARD_LOOP
)

// guardMethods name the guardian's ways to kill, for the log.
var guardMethods = map[guardMethod]string{
	guardV2Kill:   "v2 cgroup.kill",
	guardV2Freeze: "v2 cgroup.freeze, SIGKILL to each process",
	guardV1Freeze: "v1 freezer, SIGKILL to each process",
	guardLoop:     "SIGKILL to each process until none is left",
}

// forkGuardian starts a guardian over tree (nil: none, the workers
// alone), knowing pids from the start. Its exit must be reaped by the
// caller.
func forkGuardian(tree *cgroups.Tree, pids []int) (*guardianProc, error) {
	if tree == nil {
		return forkGuardianDir(nil, "", nil, nil, 0, pids)
	}
	return forkGuardianDir(tree.Tracker(), tree.Group("").Dir(tree.Tracker()), tree.Dirs(), tree.LockFDs(), 0, pids)
}

// forkGuardianDir is forkGuardian over the cgroup dir of hierarchy x (nil:
// no tree), removing dirs (the tree's, in each hierarchy) once it has
// killed, and holding the fds locks (the tree's locks) until it exits; a
// non-zero method overrides the one x offers (for tests of the others).
func forkGuardianDir(x *cgroups.Hierarchy, dir string, dirs []string, locks []int, method guardMethod, pids []int) (*guardianProc, error) {
	var s C.struct_rm_guard
	s.killfd = -1
	if len(locks) > len(s.lockfd) {
		return nil, fmt.Errorf("guardian: %d cgroup locks to hold, room for %d", len(locks), len(s.lockfd))
	}
	for i, fd := range locks {
		s.lockfd[i] = C.int(fd)
	}
	s.nlock = C.int(len(locks))
	// The parent of each directory and its name there: the guardian
	// removes them with unlinkat, needing no path of its own.
	for _, d := range dirs {
		name := path.Base(d)
		if int(s.nrm) == len(s.rmfd) || len(name) >= len(s.rmname[0]) {
			break // left to the next arbiter's sweep
		}
		fd, err := unix.Open(path.Dir(d), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			continue
		}
		defer unix.Close(fd)
		s.rmfd[s.nrm] = C.int(fd)
		for i := range len(name) {
			s.rmname[s.nrm][i] = C.char(name[i])
		}
		s.nrm++
	}
	s.dirfd = -1
	kill := "SIGKILL to each worker and its process group"
	if x != nil {
		var err error
		if method, err = guardTreeFDs(&s, x, dir, method); err != nil {
			return nil, err
		}
		defer unix.Close(int(s.dirfd))
		if s.killfd >= 0 {
			defer unix.Close(int(s.killfd))
		}
		kill += ", then " + guardMethods[method]
	}
	if len(pids) > 0 {
		cp := unsafe.Slice((*C.int)(C.malloc(C.size_t(len(pids))*C.size_t(unsafe.Sizeof(C.int(0))))), len(pids))
		defer C.free(unsafe.Pointer(&cp[0]))
		for i, pid := range pids {
			cp[i] = C.int(pid)
		}
		s.pids = &cp[0]
		s.npids = C.int(len(pids))
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("guardian: pipe: %w", err)
	}
	defer unix.Close(p[0])
	// The reaper writes under its lock, and must never wait on the
	// guardian (guardlink.go); the guardian's end blocks.
	if err := unix.SetNonblock(p[1], true); err != nil {
		unix.Close(p[1])
		return nil, fmt.Errorf("guardian: pipe: %w", err)
	}
	s.rfd = C.int(p[0])
	// Held for writing, as every fork in this process holds it: no Go
	// fork runs while the parent's memory is marked not to be copied
	// (guardian.c), which on the architectures where Go forks without
	// CLONE_VM would leave its child without its stack.
	syscall.ForkLock.Lock()
	pid := int(C.rm_guard_start(&s))
	syscall.ForkLock.Unlock()
	if pid < 0 {
		unix.Close(p[1])
		return nil, fmt.Errorf("guardian: clone: %w", syscall.Errno(s.err))
	}
	return &guardianProc{pid: pid, wfd: p[1], kill: kill}, nil
}

// standDown tells the guardian the arbiter is shutting down cleanly: it
// exits without killing anything. The write end is non-blocking: a full
// pipe is waited for, up to guardStandDown.
func (g *guardianProc) standDown() error {
	if g.wfd < 0 {
		return nil
	}
	err := writeAll(g.wfd, guardRec(guardStandDownRec, 0), time.Now().Add(guardStandDown))
	unix.Close(g.wfd)
	g.wfd = -1
	return err
}

// writeAll writes b, one record, to the non-blocking fd, waiting for room
// until deadline.
func writeAll(fd int, b []byte, deadline time.Time) error {
	for {
		_, err := unix.Write(fd, b)
		switch err {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
		default:
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("pipe full for %v", guardStandDown)
		}
		_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}, int(left.Milliseconds())+1)
	}
}

// abandon closes the write end without the stand-down record: the
// guardian kills, as if the arbiter had died.
func (g *guardianProc) abandon() {
	if g.wfd >= 0 {
		unix.Close(g.wfd)
		g.wfd = -1
	}
}

// guardianFail, when set (by tests only), is the error every guardian
// fails to start with: a clone or a mapping the kernel refuses cannot be
// had on demand in a process that must go on forking its workers.
var guardianFail atomic.Pointer[error]

// spawnGuardian starts a guardian over the arbiter's tree, if it has one,
// knowing every live child of the arbiter's, and makes it the one the
// arbiter's spawns register with. It forks on the reaper's spawner, which
// records its pid before any exit can be routed, so that the guardian is
// never taken for an orphan.
func (a *Arbiter) spawnGuardian() (*guardianProc, error) {
	exits := make(chan exitStatus, 1) // one exit: the reaper never blocks on it
	var g *guardianProc
	_, err := theReaper.start(func(*spawning) (int, proc, error) {
		var err error
		g, err = theReaper.guardStart(a.glink, func(pids []int) (*guardianProc, error) {
			if e := guardianFail.Load(); e != nil {
				return nil, *e
			}
			return forkGuardian(a.cg.tree, pids)
		})
		if err != nil {
			return 0, nil, err
		}
		// Signalled by nobody: the handle only satisfies start.
		return g.pid, &pidfdProc{pid: g.pid, pidfd: -1}, nil
	}, exits)
	if err != nil {
		return nil, err
	}
	g.exits = exits
	return g, nil
}

// startGuardian starts the arbiter's guardian, once the cgroup tree (if
// any) exists and before any worker does, and says once what it leaves
// unguarded; or, when none can be started, why, and what that means.
func (a *Arbiter) startGuardian() {
	g, err := a.spawnGuardian()
	if err != nil {
		a.log.Warn("no guardian: workers get the parent-death signal instead, which reaches them alone (not their children nor the daemons they detach) and which an upgrade in place would fire", "err", err)
		return
	}
	const detached = "what workers detach from their process group (daemons) can outlive a SIGKILLed arbiter"
	if a.cg.tree == nil {
		a.log.Info("guardian started", "pid", g.pid, "kill", g.kill)
		a.log.Warn("guardian without a cgroup tree: "+detached, "reason", "no cgroups: "+a.cg.info.Reason)
	} else {
		a.log.Info("guardian started", "pid", g.pid, "kill", g.kill, "dir", a.cg.tree.Group("").Dir(a.cg.tree.Tracker()))
		var off []string
		for _, w := range a.Watchers() {
			if w.spec.Cgroup.Mode == config.CgroupOff {
				off = append(off, w.name)
			}
		}
		if len(off) > 0 {
			a.log.Warn("not guarded, with cgroup = off: "+detached, "watchers", off)
		}
	}
	a.keep(g)
}

// keep starts the goroutine that keeps g (nil: none runs now, one is
// started after a pause) as the arbiter's guardian.
func (a *Arbiter) keep(g *guardianProc) {
	guard := &guardian{stop: make(chan struct{}), out: make(chan chan *guardianProc), done: make(chan struct{})}
	a.guard = guard
	go func() {
		defer close(guard.done)
		a.keepGuardian(g, guard)
	}()
}

// keepGuardian replaces the guardian should it die while the arbiter runs,
// and stands it down when stop is closed; or hands it over, still running,
// to guardianOut.
func (a *Arbiter) keepGuardian(g *guardianProc, guard *guardian) {
	var retry *time.Timer
	var retryc <-chan time.Time
	defer func() {
		if retry != nil {
			retry.Stop()
		}
	}()
	pause, started := guardRestart, time.Now()
	later := func() {
		if retry == nil {
			retry = time.NewTimer(pause)
		} else {
			retry.Reset(pause)
		}
		retryc = retry.C
		pause = min(2*pause, guardRestartMax)
	}
	if g == nil {
		later()
	}
	for {
		var exits chan exitStatus
		if g != nil {
			exits = g.exits
		}
		select {
		case st := <-exits:
			theReaper.guardDetach(a.glink)
			g.abandon()
			g = nil
			if time.Since(started) > guardRestartMax {
				pause = guardRestart
			}
			a.log.Warn("guardian died; another starts after a pause", "pid", st.pid, "exit_code", exitCode(st.status), "pause", pause)
			later()
		case <-retryc:
			retryc = nil
			var err error
			if g, err = a.spawnGuardian(); err != nil {
				a.log.Warn("guardian not restarted", "err", err, "pause", pause)
				later()
				continue
			}
			started = time.Now()
			a.log.Info("guardian started", "pid", g.pid, "kill", g.kill)
		case reply := <-guard.out:
			reply <- g
			return
		case <-guard.stop:
			if g != nil {
				a.standDown(g)
			}
			return
		}
	}
}

// standDown stands g down and waits, a while, for it to exit.
func (a *Arbiter) standDown(g *guardianProc) {
	theReaper.guardDetach(a.glink)
	if err := g.standDown(); err != nil {
		a.log.Warn("guardian: stand down", "pid", g.pid, "err", err)
	}
	t := time.NewTimer(guardStandDown)
	defer t.Stop()
	select {
	case st := <-g.exits:
		if code := exitCode(st.status); code != 0 {
			a.log.Warn("guardian exited", "pid", g.pid, "exit_code", code)
		} else {
			a.log.Debug("guardian stood down", "pid", g.pid)
		}
	case <-t.C:
		a.log.Warn("guardian still running after its stand-down", "pid", g.pid, "waited", guardStandDown)
	}
}

// stopGuardian stands the guardian down, after the workers are gone and
// the tree has been emptied and removed: an arbiter killed during its
// shutdown is still guarded.
func (a *Arbiter) stopGuardian() {
	if a.guard == nil {
		return
	}
	close(a.guard.stop)
	<-a.guard.done
}

// guardTreeFDs opens, into s, what the guardian needs of the tree at dir
// in hierarchy x to kill it by method (0: the best x offers), which it
// returns. On success the caller closes s.dirfd, and s.killfd unless -1.
func guardTreeFDs(s *C.struct_rm_guard, x *cgroups.Hierarchy, dir string, method guardMethod) (guardMethod, error) {
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("guardian: open %s: %w", dir, err)
	}
	// Opened now, so that killing takes one write: the guardian needs
	// nothing of the file system then.
	killfd, killErr := unix.Open(path.Join(dir, "cgroup.kill"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
	switch {
	case method == guardV2Kill && killErr != nil:
		unix.Close(dirfd)
		return 0, fmt.Errorf("guardian: %w", killErr)
	case method != 0:
	case x.Version == 2 && killErr == nil:
		method = guardV2Kill
	case x.Version == 2:
		method = guardLoop
		if _, err := os.Stat(path.Join(dir, "cgroup.freeze")); err == nil {
			method = guardV2Freeze
		}
	case x.Has(cgroups.Freezer):
		method = guardV1Freeze
	default:
		method = guardLoop
	}
	if killErr == nil && method != guardV2Kill {
		unix.Close(killfd)
		killfd = -1
	}
	s.dirfd, s.killfd, s.method = C.int(dirfd), C.int(killfd), C.int(method)
	return method, nil
}
