package arbiter

import (
	"bytes"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// exitStatus is one reaped child.
type exitStatus struct {
	pid    int
	status unix.WaitStatus
	rusage unix.Rusage
}

// The reaper is process-wide because waiting for any child is: two of them
// in one process (two Arbiters in a test binary) would steal each other's
// children. It is started by the first running Arbiter and stopped with the
// last.
//
// It also owns the spawners: spawnThreads goroutines, each locked to its OS
// thread for the reaper's whole life, through which every fork happens.
// Workers die with the arbiter through its guardian (guardian.go); only a
// child spawned while no guardian runs gets PR_SET_PDEATHSIG, which Linux
// ties to the thread that forked, and the Go runtime destroys a thread
// when a goroutine locked to it exits: forking from threads we own and
// never let die keeps such children. There are several so that a child that blocks before
// exec (its working_dir on a hung NFS mount, a slow cgroup migration),
// which holds its spawner in the vfork until it execs, holds up only that
// spawn (its watcher's loop goes on, and a stop kills it through
// killSpawn): the others spawn on the other threads. The pool is bounded:
// with spawnThreads such children at once, further spawns wait for one of
// them. Reaping never waits for a spawn. spawner.go has the spawners.
var theReaper reaper

// exitHook, when set (by tests only, through export_test.go), is called
// with the pid of each owned child after it is reaped and before its exit
// is routed: it lets a test hold the exit there while it makes the freed
// pid someone else's, a reuse the kernel cannot be made to do on demand
// at that exact moment.
var exitHook atomic.Pointer[func(pid int)]

type reaper struct {
	// mu guards the fields below, and it also serializes reaping with
	// process group signals: the reaper holds it from the moment it sees an
	// exit (waitid with WNOWAIT, which leaves the child a zombie whose pid
	// cannot be reused) until it has reaped it, and signal holds it
	// across "is the leader still unreaped?" and kill(-pid). So no group
	// signal ever reaches a group whose leader's pid was freed. Only
	// system calls that cannot block are made under it.
	mu       sync.Mutex
	refs     int
	owners   map[int]*spawning      // pid -> its spawn, while unreaped
	orphans  []chan<- exitStatus    // every running Arbiter's orphan sink
	inflight map[*spawning]struct{} // spawns not yet registered
	early    map[int]earlyExit      // reaped while spawns were in flight, not yet claimed
	disowned map[int]*spawning      // children disowned (disown), while unreaped
	stop     chan struct{}
	done     chan struct{}
	spawnc   chan spawnReq
	// held stops the reaping (reaper_hold.go); kick wakes the loop once
	// it is lifted. draining is held by the loop while it reaps and
	// routes, so that hold can wait for a drain under way.
	held     bool
	kick     chan struct{}
	draining sync.Mutex
}

// spawning is one spawn: in flight until its spawner registers the child,
// then the child's entry in owners, which a handle compares against so that
// it never signals a later child given the same pid.
type spawning struct {
	owner chan<- exitStatus // nil: reap quietly (a child that failed to exec)
	// pidfd, guarded by reaper.mu, points at the word where the kernel
	// stores the child's pidfd (in the spawner's C struct): CLONE_PIDFD
	// stores it before the child first runs, so a child that dies before
	// its spawn returns can be recognized. nil when not known.
	pidfd *int32
	// The guardian the child was given, guarded by reaper.mu
	// (guardlink.go): the link (nil: none to tell), its generation
	// then, and whether the child got the parent-death signal instead.
	guard    *guardLink
	guardGen uint64
	pdeath   bool
}

// earlyExit is an exit reaped before its child was registered: that of
// the child of one of the spawns in candidates, or an orphan's.
type earlyExit struct {
	st         exitStatus
	candidates []*spawning
}

// dropped owns children whose spawn failed after clone: reaped quietly.
var dropped = &spawning{}

// acquire starts the reaper if this is its first user. orphans receives
// exits of children nobody registered (orphaned descendants re-parented to
// us as a subreaper). Which Arbiter's worker left an orphan cannot be known
// once it is re-parented, so with several Arbiters in one process each is
// told.
//
// With held, the reaper is held (see hold) from the start: an arbiter
// restored from a hand-over adopts its children first.
func (r *reaper) acquire(orphans chan<- exitStatus, held bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.refs++
	r.orphans = append(r.orphans, orphans)
	if held {
		r.held = true
	}
	if r.refs > 1 {
		return
	}
	r.kick = make(chan struct{}, 1)
	r.owners = make(map[int]*spawning)
	r.inflight = make(map[*spawning]struct{})
	r.early = make(map[int]earlyExit)
	r.disowned = make(map[int]*spawning)
	r.stop = make(chan struct{})
	r.done = make(chan struct{})
	r.spawnc = make(chan spawnReq)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	var wg sync.WaitGroup
	// Read here, under mu: a later acquire writes these fields anew, and
	// the goroutines may start late.
	spawnc, stop := r.spawnc, r.stop
	for range spawnThreads {
		wg.Go(func() { r.spawner(spawnc, stop) })
	}
	kick := r.kick
	wg.Go(func() { r.loop(sigc, kick, stop) })
	done := r.done
	go func() {
		wg.Wait()
		signal.Stop(sigc)
		close(done)
	}()
}

// release stops the reaper when its last user is gone, and waits for it
// (and so for any spawn still in flight).
func (r *reaper) release(orphans chan<- exitStatus) {
	r.mu.Lock()
	r.refs--
	r.orphans = slices.DeleteFunc(r.orphans, func(c chan<- exitStatus) bool { return c == orphans })
	if r.refs > 0 {
		r.mu.Unlock()
		return
	}
	close(r.stop)
	r.held = false
	done := r.done
	r.mu.Unlock()
	<-done
}

// signal sends sig to the child pid that sp spawned, or with group to its
// process group, if that child has not been reaped: its pid, the group's
// id, is then still its own. Otherwise it returns os.ErrProcessDone.
func (r *reaper) signal(pid int, sp *spawning, sig syscall.Signal, group bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pid <= 0 || sp == nil || r.owners[pid] != sp {
		return os.ErrProcessDone
	}
	target := pid
	if group {
		target = -pid
	}
	err := unix.Kill(target, sig)
	if err == unix.ESRCH {
		return os.ErrProcessDone
	}
	return err
}

func (r *reaper) loop(sigc <-chan os.Signal, kick <-chan struct{}, stop <-chan struct{}) {
	for {
		r.draining.Lock()
		r.drain()
		r.draining.Unlock()
		select {
		case <-stop:
			return
		case <-sigc:
		case <-kick:
		}
	}
}

// drain reaps every child that has exited. SIGCHLD coalesces, so one signal
// may stand for many exits.
func (r *reaper) drain() {
	for {
		st, to, orphans, ok := r.reapOne()
		if !ok {
			return
		}
		switch {
		case to != nil:
			if h := exitHook.Load(); h != nil {
				(*h)(st.pid)
			}
			// Watcher loops never block on outsiders and drain this
			// channel promptly (one waiting for a hook keeps receiving),
			// so a blocking send is bounded.
			to <- st
		case orphans != nil:
			tellOrphan(orphans, st)
		}
	}
}

func tellOrphan(orphans []chan<- exitStatus, st exitStatus) {
	for _, c := range orphans {
		// Orphans are news, not work: drop rather than wait.
		select {
		case c <- st:
		default:
		}
	}
}

// Kinds of exited child, for reapOne.
const (
	orphanExit    = iota // nobody's: reported as an orphan's
	ownedExit            // a registered child: its group is killed, its exit routed
	spawnedExit          // an in-flight spawn's child: its group is killed, its exit kept aside
	uncertainExit        // maybe an in-flight spawn's child: kept aside
)

// reapOne reaps one exited child, if there is one (ok), and says where its
// exit goes: to its owner (to), to the orphan sinks (orphans), or nowhere
// yet (both nil: kept aside for its spawner, or dropped). For a child it
// owns, it first kills what is left of the child's process group, while
// the child is a zombie and so still holds the group's id: grandchildren
// never run on unsupervised, and no later holder of the pid is hit.
func (r *reaper) reapOne() (st exitStatus, to chan<- exitStatus, orphans []chan<- exitStatus, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held {
		return st, nil, nil, false
	}
	var pid int
	for {
		var err error
		pid, err = peekExited()
		if err != unix.EINTR {
			if err != nil || pid <= 0 {
				return st, nil, nil, false
			}
			break
		}
	}
	kind, sp := orphanExit, r.owners[pid]
	var candidates []*spawning
	switch {
	case sp != nil:
		kind = ownedExit
	case len(r.inflight) > 0:
		kind, candidates = r.classifyLocked(pid)
	}
	if kind == spawnedExit || kind == ownedExit && sp != dropped {
		_ = unix.Kill(-pid, unix.SIGKILL)
	}
	// While it is a zombie: its pid is not yet anyone else's.
	switch kind {
	case ownedExit:
		r.unguardLocked(pid, sp, true)
	case spawnedExit, uncertainExit:
		for _, c := range candidates {
			r.unguardLocked(pid, c, false)
		}
	default:
		if d := r.disowned[pid]; d != nil {
			r.unguardLocked(pid, d, true)
			delete(r.disowned, pid)
		}
	}
	for {
		wpid, err := unix.Wait4(pid, &st.status, unix.WNOHANG, &st.rusage)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			// Someone else in this process waited for it first
			// (DESIGN.md forbids that); nothing is left to route.
			return st, nil, nil, true
		}
		if wpid != pid {
			// Not possible for an exited child; stop rather than spin
			// on it, until the next SIGCHLD.
			return st, nil, nil, false
		}
		break
	}
	st.pid = pid
	switch kind {
	case ownedExit:
		delete(r.owners, pid)
		return st, sp.owner, nil, true
	case spawnedExit, uncertainExit:
		r.early[pid] = earlyExit{st: st, candidates: candidates}
		return st, nil, nil, true
	}
	return st, nil, slices.Clone(r.orphans), true
}

// classifyLocked says whether pid, exited and not registered, is the child
// of a spawn in flight, found by the pidfds the kernel has handed out for
// them (spawnedExit), or may be (uncertainExit: some spawns' pidfds are
// not known, before or after their clone, or on a kernel before 5.2
// without CLONE_PIDFD), and which spawns it may be the child of.
func (r *reaper) classifyLocked(pid int) (int, []*spawning) {
	var unknown []*spawning
	for sp := range r.inflight {
		fd := int32(-1)
		if sp.pidfd != nil {
			fd = atomic.LoadInt32(sp.pidfd)
		}
		if fd < 0 {
			unknown = append(unknown, sp)
			continue
		}
		if pidfdPid(int(fd)) == pid {
			return spawnedExit, []*spawning{sp}
		}
	}
	if len(unknown) > 0 {
		return uncertainExit, unknown
	}
	return orphanExit, nil
}

// pidfdPid returns the pid a pidfd of this process refers to, from its
// fdinfo (-1 if it cannot tell).
func pidfdPid(fd int) int {
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return -1
	}
	for line := range bytes.Lines(b) {
		if v, ok := bytes.CutPrefix(line, []byte("Pid:")); ok {
			pid, err := strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return -1
			}
			return pid
		}
	}
	return -1
}

// peekExited returns the pid of a child that has exited, leaving it
// unreaped (a zombie), or 0 if none has.
func peekExited() (int, error) {
	var info unix.Siginfo
	if err := unix.Waitid(unix.P_ALL, 0, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil); err != nil {
		return 0, err
	}
	// si_pid is the first field of the union that follows si_signo,
	// si_errno and si_code, aligned as a pointer is; x/sys/unix leaves it
	// unnamed.
	off := (3*4 + unsafe.Sizeof(uintptr(0)) - 1) &^ (unsafe.Sizeof(uintptr(0)) - 1)
	return int(*(*int32)(unsafe.Add(unsafe.Pointer(&info), off))), nil
}

// disown forgets who owns pid, so that its exit, when it comes, is
// reported as an orphan's (a worker left running by rm --nostop). Its
// guardian keeps it, and is told when it exits.
func (r *reaper) disown(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if sp := r.owners[pid]; sp != nil && sp.guard != nil {
		r.disowned[pid] = sp
	}
	delete(r.owners, pid)
}
