package arbiter

import (
	"errors"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// exitStatus is one reaped child.
type exitStatus struct {
	pid    int
	status unix.WaitStatus
	rusage unix.Rusage
}

// The reaper is process-wide because wait4(-1) is: two of them in one process
// (two Arbiters in a test binary) would steal each other's children. It is
// started by the first running Arbiter and stopped with the last.
//
// It also owns the spawner: one goroutine locked to its OS thread for the
// reaper's whole life, through which every fork happens. Linux ties
// PR_SET_PDEATHSIG to the thread that forked, and the Go runtime destroys a
// thread when a goroutine locked to it exits; forking from a thread we own
// and never let die is what makes "workers die with the arbiter" hold.
var theReaper reaper

type reaper struct {
	mu sync.Mutex
	// guarded by mu
	refs    int
	owners  map[int]chan<- exitStatus // pid -> the watcher loop that owns it
	orphans []chan<- exitStatus       // every running Arbiter's orphan sink
	stop    chan struct{}
	done    chan struct{}
	spawnc  chan spawnReq
}

type spawnReq struct {
	start func() (int, proc, error)
	owner chan<- exitStatus
	reply chan spawnReply
}

type spawnReply struct {
	proc proc
	err  error
}

// acquire starts the reaper if this is its first user. orphans receives
// exits of children nobody registered (orphaned descendants re-parented to
// us as a subreaper). Which Arbiter's worker left an orphan cannot be known
// once it is re-parented, so with several Arbiters in one process each is
// told.
func (r *reaper) acquire(orphans chan<- exitStatus) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs++
	r.orphans = append(r.orphans, orphans)
	if r.refs > 1 {
		return
	}
	r.owners = make(map[int]chan<- exitStatus)
	r.stop = make(chan struct{})
	r.done = make(chan struct{})
	r.spawnc = make(chan spawnReq)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	var wg sync.WaitGroup
	wg.Go(func() { r.spawner(r.spawnc, r.stop) })
	wg.Go(func() { r.loop(sigc, r.stop) })
	done := r.done
	go func() {
		wg.Wait()
		signal.Stop(sigc)
		close(done)
	}()
}

// release stops the reaper when its last user is gone, and waits for it.
func (r *reaper) release(orphans chan<- exitStatus) {
	r.mu.Lock()
	r.refs--
	r.orphans = slices.DeleteFunc(r.orphans, func(c chan<- exitStatus) bool { return c == orphans })
	if r.refs > 0 {
		r.mu.Unlock()
		return
	}
	close(r.stop)
	done := r.done
	r.mu.Unlock()
	<-done
}

// start runs fn on the spawner thread and registers the new pid as owned by
// owner before any exit of it can be routed. fn returns the child's pid
// even when it fails after creating one (a child that could not exec), so
// that its exit is reaped quietly rather than taken for an orphan's.
func (r *reaper) start(fn func() (int, proc, error), owner chan<- exitStatus) (proc, error) {
	r.mu.Lock()
	spawnc, stop := r.spawnc, r.stop
	r.mu.Unlock()
	if spawnc == nil {
		return nil, errors.New("BUG: spawn without a running reaper")
	}
	reply := make(chan spawnReply, 1)
	select {
	case spawnc <- spawnReq{start: fn, owner: owner, reply: reply}:
	case <-stop:
		return nil, errors.New("arbiter is shutting down")
	}
	rep := <-reply
	return rep.proc, rep.err
}

func (r *reaper) spawner(reqs <-chan spawnReq, stop <-chan struct{}) {
	runtime.LockOSThread()
	// Unlock before returning so the runtime keeps the thread: a destroyed
	// thread would fire the parent-death signal of every child it forked.
	defer runtime.UnlockOSThread()
	for {
		select {
		case <-stop:
			return
		case req := <-reqs:
			// Holding mu across the fork means drain, which needs mu to
			// route an exit, cannot take this child for an orphan before
			// its owner is recorded, however fast it dies.
			r.mu.Lock()
			pid, p, err := req.start()
			switch {
			case err == nil:
				r.owners[pid] = req.owner
			case pid > 0:
				r.owners[pid] = nil // reaped and dropped
			}
			r.mu.Unlock()
			req.reply <- spawnReply{proc: p, err: err}
		}
	}
}

func (r *reaper) loop(sigc <-chan os.Signal, stop <-chan struct{}) {
	for {
		r.drain()
		select {
		case <-stop:
			return
		case <-sigc:
		}
	}
}

// drain reaps every child that has exited. SIGCHLD coalesces, so one signal
// may stand for many exits.
func (r *reaper) drain() {
	for {
		var st exitStatus
		pid, err := unix.Wait4(-1, &st.status, unix.WNOHANG, &st.rusage)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		st.pid = pid
		r.mu.Lock()
		owner, ok := r.owners[pid]
		delete(r.owners, pid)
		orphans := slices.Clone(r.orphans)
		r.mu.Unlock()
		if ok {
			if owner != nil {
				// Watcher loops never block on outsiders and drain
				// this channel promptly (one waiting for a hook keeps
				// receiving), so a blocking send is bounded.
				owner <- st
			}
			continue
		}
		for _, c := range orphans {
			// Orphans are news, not work: drop rather than wait.
			select {
			case c <- st:
			default:
			}
		}
	}
}

// disown forgets who owns pid, so that its exit, when it comes, is
// reported as an orphan's (a worker left running by rm --nostop).
func (r *reaper) disown(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.owners, pid)
}
