package arbiter

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// The guardian's set of workers, seen from the spawns and the reaper.
//
// A worker registers itself: the spawn hands its child a duplicate of the
// write end of the guardian's pipe, and the child writes an add record
// with its own pid before anything else (spawn.c), so no worker exists
// that the guardian does not know. The reaper writes a remove record for
// each child it owns once it has exited and before it reaps it, while its
// pid is still the zombie's and cannot be anyone else's: the guardian
// never kills a pid that was freed (guardian.h has the records).
//
// Between a guardian's death and its replacement (a pause of a second or
// more, guardian.go) nothing guards the workers: children spawned then get
// the parent-death signal instead, and the arbiter counts itself unguarded
// while they live (pdeath). A replacement guardian is forked knowing every
// live child the arbiter owns, under the reaper's lock, and the children
// of spawns then in flight, which wrote to the dead one, are added by
// their spawners when they register them (guardSpawnedLocked).
//
// The records are written without blocking, under the reaper's lock. One
// that cannot be written (the pipe full: the guardian stopped reading,
// stopped by SIGSTOP or starved) is lost: a lost add leaves that worker
// to the cgroup tree's kill alone, a lost remove leaves a pid in the set
// which the guardian would kill should the arbiter die, though it may be
// another process's by then. The pipe holds 8192 records, and the guardian
// reads them as they come.

// guardLink is an arbiter's link to its guardian. Its fields are guarded
// by theReaper.mu.
type guardLink struct {
	wfd int    // the write end of the running guardian's pipe; -1: none runs
	gen uint64 // counts the changes of wfd
	// pdeath counts the live children given the parent-death signal
	// instead, spawned while no guardian ran: an exec of the arbiter
	// would kill those.
	pdeath int
}

func newGuardLink() *guardLink { return &guardLink{wfd: -1} }

// guardRec is a record for the guardian's pipe (guardian.h).
func guardRec(op byte, pid int) []byte {
	b := make([]byte, 8)
	binary.NativeEndian.PutUint32(b, uint32(op))
	binary.NativeEndian.PutUint32(b[4:], uint32(pid))
	return b
}

// writeLocked writes one record, without blocking, and reports whether
// it was written (see above for what a lost one means).
func (l *guardLink) writeLocked(op byte, pid int) bool {
	if l.wfd < 0 {
		return false
	}
	n, err := unix.Write(l.wfd, guardRec(op, pid))
	return err == nil && n == 8
}

// guardFD returns a close-on-exec duplicate of the write end of l's
// guardian, for the child of sp to register with, or -1 when none runs
// (the child then gets the parent-death signal instead), and records in
// sp which guardian that was. sp may be nil (tests).
func (r *reaper) guardFD(sp *spawning, l *guardLink) int {
	if l == nil {
		return -1
	}
	if sp == nil {
		sp = &spawning{}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	sp.guard, sp.guardGen, sp.pdeath = l, l.gen, true
	if l.wfd < 0 {
		return -1
	}
	fd, err := unix.FcntlInt(uintptr(l.wfd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		// Out of fds: the spawn would likely fail anyway; this child
		// at least dies with the arbiter's thread, as without a guardian.
		return -1
	}
	sp.pdeath = false
	return fd
}

// guardSpawnedLocked brings sp's guardian up to date once the spawner
// knows how the spawn of pid went: ok, it is registered as a live child;
// died, its exit was reaped already (and its remove record written then).
// A child that failed after registering itself is a zombie now: removed.
// One that registered with a guardian since replaced is added to the
// current one, which was forked before the child was registered.
func (r *reaper) guardSpawnedLocked(sp *spawning, pid int, ok, died bool) {
	l := sp.guard
	if l == nil || pid <= 0 || died {
		return
	}
	switch {
	case !ok:
		l.writeLocked(guardRemove, pid)
	case sp.guardGen != l.gen:
		l.writeLocked(guardAdd, pid)
	}
	if ok && sp.pdeath {
		l.pdeath++
	}
}

// unguardLocked tells sp's guardian that its child pid, exited and not yet
// reaped, is gone; owned says it was registered (counted in pdeath).
func (r *reaper) unguardLocked(pid int, sp *spawning, owned bool) {
	l := sp.guard
	if l == nil {
		return
	}
	if owned && sp.pdeath {
		l.pdeath--
	}
	l.writeLocked(guardRemove, pid)
}

// guardPidsLocked returns the live children registered for l's guardian.
func (r *reaper) guardPidsLocked(l *guardLink) []int {
	var pids []int
	for pid, sp := range r.owners {
		if sp.guard == l {
			pids = append(pids, pid)
		}
	}
	for pid, sp := range r.disowned {
		if sp.guard == l {
			pids = append(pids, pid)
		}
	}
	return pids
}

// guardStart forks a guardian for l with fork, which is given the live
// children l's guardian must know, and makes it l's; all under the
// reaper's lock, so that no child is reaped or registered meanwhile.
func (r *reaper) guardStart(l *guardLink, fork func(pids []int) (*guardianProc, error)) (*guardianProc, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	g, err := fork(r.guardPidsLocked(l))
	if err != nil {
		return nil, err
	}
	l.wfd = g.wfd
	l.gen++
	return g, nil
}

// guardAttach makes wfd, the write end of a guardian that knows every
// live child already (adopted across an exec), l's.
func (r *reaper) guardAttach(l *guardLink, wfd int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l.wfd = wfd
	l.gen++
}

// guardDetach leaves l without a guardian, before its write end is closed:
// no spawn duplicates it after.
func (r *reaper) guardDetach(l *guardLink) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l.wfd = -1
	l.gen++
}

// guardWith makes sp, the entry of pid, an adopted child (reaper.adopt),
// one of l's: l's guardian is told of it (the one adopted with it knows
// it already: an add is idempotent; one started anew may not), and its
// remove record is written when it exits, as a spawned child's is.
func (r *reaper) guardWith(sp *spawning, pid int, l *guardLink) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sp.guard, sp.guardGen = l, l.gen
	l.writeLocked(guardAdd, pid)
}

// guarded reports whether l's guardian runs and guards every live
// child (none has the parent-death signal instead).
func (r *reaper) guarded(l *guardLink) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return l.wfd >= 0 && l.pdeath == 0
}
