package arbiter

import (
	"errors"
	"runtime"
	"slices"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The spawner: a pool of threads, each locked for the reaper's whole life,
// through which every fork happens, and the registration of each child
// with the reaper.

// spawnThreads is the number of spawner threads, hence of spawns in flight
// at once.
const spawnThreads = 4

// forkedHook, when set (by tests only), is called on the spawner thread
// with the pid of each child forked for the reaper, once the fork has
// returned and before the child is registered: it lets a test make the
// child exit inside that window, which otherwise lasts microseconds.
var forkedHook atomic.Pointer[func(pid int)]

// registerHook, when set (by tests only), is called on the spawner thread
// with the pid a spawn returned, before it is registered: past the point
// where the reaper can recognize the child by its pidfd.
var registerHook atomic.Pointer[func(pid int)]

type spawnReq struct {
	start  func(*spawning) (int, proc, error)
	owner  chan<- exitStatus
	reply  chan spawnReply
	ticket *spawnTicket // nil: nobody kills it under way
}

type spawnReply struct {
	proc proc
	err  error
}

// start runs fn on a spawner thread and registers the new pid as owned by
// owner; an exit of the child before that is kept aside and delivered to
// owner once start has returned. fn returns the child's pid even when it
// fails after creating one (a child that could not exec), so that its exit
// is reaped quietly rather than taken for an orphan's.
func (r *reaper) start(fn func(*spawning) (int, proc, error), owner chan<- exitStatus) (proc, error) {
	return r.startTicket(fn, owner, nil)
}

// spawnTicket lets the one who asked for a spawn kill its child while the
// spawn is under way (killSpawn): a child stuck before its exec (a hung
// working directory, a frozen cgroup) holds a spawner thread until it
// moves on, and a stop must not wait for that for ever.
type spawnTicket struct {
	sp atomic.Pointer[spawning] // the spawn under way; nil before and after
}

// killSpawn sends SIGKILL to the child of the spawn t is for, if that spawn
// is under way and its child exists; it reports whether it did. The
// child's exit then ends the spawn as if it had exec'd and died at once.
func (r *reaper) killSpawn(t *spawnTicket) bool {
	sp := t.sp.Load()
	if sp == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if sp.pidfd == nil {
		return false
	}
	fd := atomic.LoadInt32(sp.pidfd)
	if fd < 0 {
		return false
	}
	// Under mu: the spawner withdraws the pidfd's address (track) under
	// it before the fd can be closed, so fd is the child's.
	return unix.PidfdSendSignal(int(fd), unix.SIGKILL, nil, 0) == nil
}

// startTicket is start, with the spawn under way recorded in t (when not
// nil) for killSpawn.
func (r *reaper) startTicket(fn func(*spawning) (int, proc, error), owner chan<- exitStatus, t *spawnTicket) (proc, error) {
	r.mu.Lock()
	spawnc, stop := r.spawnc, r.stop
	r.mu.Unlock()
	if spawnc == nil {
		return nil, errors.New("BUG: spawn without a running reaper")
	}
	reply := make(chan spawnReply, 1)
	select {
	case spawnc <- spawnReq{start: fn, owner: owner, reply: reply, ticket: t}:
	case <-stop:
		return nil, errors.New("arbiter is shutting down")
	}
	rep := <-reply
	return rep.proc, rep.err
}

func (r *reaper) spawner(reqs <-chan spawnReq, stop <-chan struct{}) {
	runtime.LockOSThread()
	// Unlock before returning so the runtime keeps the thread: a destroyed
	// thread would fire the parent-death signal of every child it forked
	// while no guardian ran (workers left running by rm --nostop outlive
	// the reaper).
	defer runtime.UnlockOSThread()
	for {
		select {
		case <-stop:
			return
		case req := <-reqs:
			r.spawn(req)
		}
	}
}

// spawn runs one spawn request. Nothing is locked across the fork, which
// lasts until the child execs (CLONE_VFORK): the reaper goes on reaping,
// and recognizes this child by its pidfd if it dies before it is
// registered here (see classifyLocked).
func (r *reaper) spawn(req spawnReq) {
	sp := &spawning{owner: req.owner}
	r.mu.Lock()
	r.inflight[sp] = struct{}{}
	r.mu.Unlock()
	if req.ticket != nil {
		req.ticket.sp.Store(sp)
		defer req.ticket.sp.Store(nil)
	}

	pid, p, err := req.start(sp)
	if h := registerHook.Load(); h != nil && pid > 0 {
		(*h)(pid)
	}

	r.mu.Lock()
	delete(r.inflight, sp)
	e, died := r.early[pid]
	// Only an exit kept aside while this spawn was in flight can be its
	// child's: an older one of the same pid was a process before it.
	died = died && pid > 0 && slices.Contains(e.candidates, sp)
	switch {
	case pid <= 0:
	case died:
		delete(r.early, pid)
	case err == nil:
		r.owners[pid] = sp
	default:
		r.owners[pid] = dropped
	}
	r.guardSpawnedLocked(sp, pid, err == nil, died)
	// An exit kept aside is an orphan's once none of the spawns it might
	// have come from is in flight.
	var strays []exitStatus
	for epid, x := range r.early {
		x.candidates = slices.DeleteFunc(x.candidates, func(c *spawning) bool { return c == sp })
		if len(x.candidates) == 0 {
			strays = append(strays, x.st)
			delete(r.early, epid)
		} else {
			r.early[epid] = x
		}
	}
	orphans := slices.Clone(r.orphans)
	r.mu.Unlock()

	req.reply <- spawnReply{proc: p, err: err}
	if died && err == nil {
		// After the reply, so the owner knows the worker when this
		// arrives; it drains its channel as it does the reaper's.
		req.owner <- e.st
	}
	for _, st := range strays {
		tellOrphan(orphans, st)
	}
}

// track records where the kernel will store the pidfd of sp's child, or,
// with nil, that it must no longer be read (the spawner is about to free
// or close it).
func (r *reaper) track(sp *spawning, pidfd *int32) {
	if sp == nil {
		return
	}
	r.mu.Lock()
	sp.pidfd = pidfd
	r.mu.Unlock()
}
