package arbiter

/*
#include "guardian.h"
*/
import "C"

import (
	"fmt"
	"os"
	"path"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
)

// The guardian kills the arbiter's cgroup tree when the arbiter dies
// without shutting down (SIGKILL, the OOM killer, a crash), so that nothing
// it started outlives it: the parent-death signal reaches a worker alone,
// not the children it leaves in its process group nor the daemons it
// detaches, which would run on, holding the sockets, until the next arbiter
// sweeps the tree. guardian.c says how it is made and what it holds.
//
// The arbiter holds the write end of a pipe whose read end the guardian
// blocks on. At shutdown, once the tree is empty and removed, it writes the
// stand-down byte and closes it; the guardian exits 0 and the reaper reaps
// it as the arbiter's own (no orphan event). The kernel closes the write
// end of a killed arbiter, and end of file without the byte tells the
// guardian to kill the tree and remove it.
//
// The guardian also holds the tree's locks (cgroups.Tree.LockFDs): another
// arbiter sweeping beside the tree (one in a container, or the next one
// here) leaves it alone until the guardian has killed it and exited.
//
// An in-place upgrade (the arbiter executing its new binary, same pid)
// keeps the guardian by clearing close-on-exec on the write end and
// passing its number and the guardian's pid to the new image, which is
// still the guardian's parent; nothing ties the guardian to a thread. The
// upgrade itself is not written yet.

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

// guardianProc is a running guardian seen from the arbiter.
type guardianProc struct {
	pid   int
	wfd   int             // the write end of its pipe; -1 once closed
	exits chan exitStatus // its exit, from the reaper
	kill  string          // how it kills, for the log
}

// guardian is the Run goroutine's handle on the goroutine that keeps a
// guardian running.
type guardian struct {
	stop chan struct{}
	done chan struct{}
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

// forkGuardian starts a guardian over tree. Its exit must be reaped by the
// caller.
func forkGuardian(tree *cgroups.Tree) (*guardianProc, error) {
	return forkGuardianDir(tree.Tracker(), tree.Group("").Dir(tree.Tracker()), tree.Dirs(), tree.LockFDs(), 0)
}

// forkGuardianDir is forkGuardian over the cgroup dir of hierarchy x,
// removing dirs (the tree's, in each hierarchy) once it has killed, and
// holding the fds locks (the tree's locks) until it exits; a non-zero
// method overrides the one x offers (for tests of the others).
func forkGuardianDir(x *cgroups.Hierarchy, dir string, dirs []string, locks []int, method guardMethod) (*guardianProc, error) {
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
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("guardian: open %s: %w", dir, err)
	}
	defer unix.Close(dirfd)
	s.dirfd = C.int(dirfd)
	switch {
	case method != 0:
	case x.Version == 2:
		method = guardLoop
		if _, err := os.Stat(path.Join(dir, "cgroup.freeze")); err == nil {
			method = guardV2Freeze
		}
		// Opened now, so that killing takes one write: the guardian
		// needs nothing of the file system then.
		if fd, err := unix.Open(path.Join(dir, "cgroup.kill"), unix.O_WRONLY|unix.O_CLOEXEC, 0); err == nil {
			defer unix.Close(fd)
			s.killfd = C.int(fd)
			method = guardV2Kill
		}
	case x.Has(cgroups.Freezer):
		method = guardV1Freeze
	default:
		method = guardLoop
	}
	if method == guardV2Kill && s.killfd < 0 {
		fd, err := unix.Open(path.Join(dir, "cgroup.kill"), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("guardian: %w", err)
		}
		defer unix.Close(fd)
		s.killfd = C.int(fd)
	}
	s.method = C.int(method)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("guardian: pipe: %w", err)
	}
	defer unix.Close(p[0])
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
	return &guardianProc{pid: pid, wfd: p[1], kill: guardMethods[method]}, nil
}

// standDown tells the guardian the arbiter is shutting down cleanly: it
// exits without killing anything.
func (g *guardianProc) standDown() error {
	if g.wfd < 0 {
		return nil
	}
	_, err := unix.Write(g.wfd, []byte{C.RM_GUARD_STAND_DOWN})
	unix.Close(g.wfd)
	g.wfd = -1
	return err
}

// abandon closes the write end without the stand-down byte: the guardian
// kills the tree, as if the arbiter had died.
func (g *guardianProc) abandon() {
	if g.wfd >= 0 {
		unix.Close(g.wfd)
		g.wfd = -1
	}
}

// spawnGuardian starts a guardian over the arbiter's tree on the reaper's
// spawner, which records its pid before any exit can be routed, so that
// the guardian is never taken for an orphan.
func (a *Arbiter) spawnGuardian() (*guardianProc, error) {
	exits := make(chan exitStatus, 1) // one exit: the reaper never blocks on it
	var g *guardianProc
	_, err := theReaper.start(func(*spawning) (int, proc, error) {
		var err error
		if g, err = forkGuardian(a.cg.tree); err != nil {
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

// startGuardian starts the arbiter's guardian, once the cgroup tree exists
// and before any worker does, or says once why there is none and what that
// means.
func (a *Arbiter) startGuardian() {
	const outlive = "descendants of workers (their children, the daemons they detach) can outlive a SIGKILLed arbiter: the parent-death signal reaches the workers alone"
	if a.cg.tree == nil {
		a.log.Warn("no guardian: "+outlive, "reason", "no cgroups: "+a.cg.info.Reason)
		return
	}
	g, err := a.spawnGuardian()
	if err != nil {
		a.log.Warn("no guardian: "+outlive, "err", err)
		return
	}
	a.log.Info("guardian started", "pid", g.pid, "kill", g.kill, "dir", a.cg.tree.Group("").Dir(a.cg.tree.Tracker()))
	var off []string
	for _, w := range a.Watchers() {
		if w.spec.Cgroup.Mode == config.CgroupOff {
			off = append(off, w.name)
		}
	}
	if len(off) > 0 {
		a.log.Warn("not guarded, with cgroup = off: "+outlive, "watchers", off)
	}
	guard := &guardian{stop: make(chan struct{}), done: make(chan struct{})}
	a.guard = guard
	go func() {
		defer close(guard.done)
		a.keepGuardian(g, guard.stop)
	}()
}

// keepGuardian replaces the guardian should it die while the arbiter runs,
// and stands it down when stop is closed.
func (a *Arbiter) keepGuardian(g *guardianProc, stop <-chan struct{}) {
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
	for {
		var exits chan exitStatus
		if g != nil {
			exits = g.exits
		}
		select {
		case st := <-exits:
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
		case <-stop:
			if g == nil {
				return
			}
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
			return
		}
	}
}

// stopGuardian stands the guardian down, after the tree has been emptied
// and removed: an arbiter killed during its shutdown is still guarded.
func (a *Arbiter) stopGuardian() {
	if a.guard == nil {
		return
	}
	close(a.guard.stop)
	<-a.guard.done
}
