package arbiter

/*
#include <stdlib.h>
#include "spawn.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
)

// spawnAttr is everything the child applies between fork and exec.
type spawnAttr struct {
	path      string
	argv      []string
	env       []string
	listenPID bool       // add LISTEN_PID=<the child's own pid>
	files     []*os.File // files[i] becomes fd i; nil: closed
	dir       string
	chroot    string
	umask     int // -1: unchanged
	nice      int // 0: unchanged
	rlimits   []config.Rlimit
	setCreds  bool
	uid, gid  uint32
	groups    []uint32       // set when non-nil
	cgroups   []cgroups.Join // joined first of all; the v2 one (Clone) at the clone
	noClone3  bool           // tests: the fallback, clone() and cgroup.procs writes
	guard     *guardLink     // the arbiter's guardian; nil, or none running: the parent-death signal

	// Out: clone3 created the child in the v2 cgroup of cgroups, rather
	// than the child moving itself there.
	clonedIn bool
}

var stageNames = map[C.int]string{
	C.RM_STAGE_CLONE:     "clone",
	C.RM_STAGE_SIGMASK:   "sigprocmask",
	C.RM_STAGE_SETPGID:   "setpgid",
	C.RM_STAGE_FDS:       "dup2",
	C.RM_STAGE_RLIMIT:    "setrlimit",
	C.RM_STAGE_NICE:      "setpriority",
	C.RM_STAGE_CHROOT:    "chroot",
	C.RM_STAGE_SETGROUPS: "setgroups",
	C.RM_STAGE_SETGID:    "setgid",
	C.RM_STAGE_SETUID:    "setuid",
	C.RM_STAGE_PDEATHSIG: "prctl PR_SET_PDEATHSIG",
	C.RM_STAGE_CHDIR:     "chdir",
	C.RM_STAGE_EXEC:      "exec",
	C.RM_STAGE_CGROUP:    "join cgroup",
	// Written with the cgroup's directory: the cgroup as clone3 got it.
	C.RM_STAGE_CLONE_CGROUP: "clone3 into cgroup",
	C.RM_STAGE_GUARD:        "register with the guardian",
}

// forkExec starts a worker in its own process group with attr applied, and
// returns its pid and a pidfd for it. When the child was created but
// failed before exec (it has then exited with status 127), pid is positive
// and err says which step failed. The child registers itself with the
// guardian of a.guard; only without one is it given the parent-death
// signal, tied to the thread that forks: forkExec runs on a spawner
// thread, which lives as long as the reaper. sp, when not nil, is the
// reaper's record of this spawn, told where the child's pidfd appears
// while the fork is in flight, and which guardian the child was given.
func forkExec(a *spawnAttr, sp *spawning) (pid, pidfd int, err error) {
	var m cmem
	defer m.free()
	s, err := buildSpawn(a, &m)
	if err != nil {
		return 0, -1, err
	}
	// A descriptor of the spawn's own: the arbiter's may be closed under
	// it, should the guardian die while the child is being made.
	s.guardfd = C.int(theReaper.guardFD(sp, a.guard))
	if s.guardfd >= 0 {
		defer unix.Close(int(s.guardfd))
	} else {
		s.pdeathsig = C.int(syscall.SIGKILL)
		s.ppid = C.int(os.Getpid())
	}

	// Not under syscall.ForkLock, as os/exec forks: the lock would be held
	// until the child execs (CLONE_VFORK), so a child blocked before exec
	// would stop every other fork in the process, on the other spawner
	// threads and in os/exec. The lock keeps fds created without
	// close-on-exec out of children, and ours need no such care: the child
	// closes every fd beyond those handed over before it execs.
	//
	// The kernel stores the pidfd before the child first runs; the reaper
	// reads it to recognize this child should it die before we return.
	s.pidfd = -1
	theReaper.track(sp, (*int32)(unsafe.Pointer(&s.pidfd)))
	p := int(C.rm_spawn_run(s))
	if h := forkedHook.Load(); h != nil && sp != nil && p > 0 {
		(*h)(p)
	}
	// From here the pidfd may be closed, and s is freed on return.
	theReaper.track(sp, nil)
	runtime.KeepAlive(a.files)
	a.clonedIn = s.in_cgroup != 0

	if s.err != 0 {
		err := spawnError(a, s)
		if p > 0 {
			unix.Close(int(s.pidfd))
		}
		return max(p, 0), -1, err
	}
	if p <= 0 {
		return 0, -1, errors.New("BUG: clone returned no pid and no error")
	}
	return p, int(s.pidfd), nil
}

// cmem is the C memory of one spawn's struct, freed together once the
// child has exec'd or failed.
type cmem struct{ allocs []unsafe.Pointer }

func (m *cmem) free() {
	for _, p := range m.allocs {
		C.free(p)
	}
}

func (m *cmem) str(s string) *C.char {
	p := C.CString(s)
	m.allocs = append(m.allocs, unsafe.Pointer(p))
	return p
}

func (m *cmem) array(n, size int) unsafe.Pointer {
	p := C.calloc(C.size_t(max(n, 1)), C.size_t(size))
	m.allocs = append(m.allocs, p)
	return p
}

// strings is ss as a NULL-terminated array, with room for extra more.
func (m *cmem) strings(ss []string, extra int) []*C.char {
	arr := unsafe.Slice((**C.char)(m.array(len(ss)+extra+1, int(unsafe.Sizeof((*C.char)(nil))))), len(ss)+extra+1)
	for i, s := range ss {
		arr[i] = m.str(s)
	}
	return arr
}

// fds is the child's fd table: files[i] becomes fd i; -1, closed.
func (m *cmem) fds(files []*os.File) ([]C.int, error) {
	fds := unsafe.Slice((*C.int)(m.array(len(files), int(unsafe.Sizeof(C.int(0))))), max(len(files), 1))
	for i, f := range files {
		fds[i] = -1
		if f == nil {
			continue
		}
		// Through SyscallConn, not Fd, which would make the file blocking.
		rc, err := f.SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("fd %d: %w", i, err)
		}
		if err := rc.Control(func(fd uintptr) { fds[i] = C.int(fd) }); err != nil {
			return nil, fmt.Errorf("fd %d: %w", i, err)
		}
	}
	return fds, nil
}

// buildSpawn is the C struct of a's spawn, in m: what the child applies
// between its clone and its exec.
func buildSpawn(a *spawnAttr, m *cmem) (*C.struct_rm_spawn, error) {
	cstr, carray, cstrings := m.str, m.array, m.strings
	s := (*C.struct_rm_spawn)(carray(1, int(unsafe.Sizeof(C.struct_rm_spawn{}))))
	s.path = cstr(a.path)
	s.argv = (**C.char)(unsafe.Pointer(&cstrings(a.argv, 0)[0]))
	env := cstrings(a.env, 1)
	if a.listenPID {
		// Room for the digits, which the child writes in place.
		slot := cstr("LISTEN_PID=" + "000000000000000000000")
		env[len(a.env)] = slot
		s.listen_pid = (*C.char)(unsafe.Add(unsafe.Pointer(slot), len("LISTEN_PID=")))
	}
	s.envp = (**C.char)(unsafe.Pointer(&env[0]))

	fds, err := m.fds(a.files)
	if err != nil {
		return nil, err
	}
	s.fds = &fds[0]
	s.nfds = C.int(len(a.files))
	if a.dir != "" {
		s.dir = cstr(a.dir)
	}
	if a.chroot != "" {
		s.chroot = cstr(a.chroot)
	}
	s.umask = C.int(a.umask)
	if a.nice != 0 {
		s.set_nice = 1
		s.nice = C.int(a.nice)
	}
	if len(a.rlimits) > 0 {
		rl := unsafe.Slice((*C.struct_rm_rlimit)(carray(len(a.rlimits), int(unsafe.Sizeof(C.struct_rm_rlimit{})))), len(a.rlimits))
		for i, r := range a.rlimits {
			rl[i].resource = C.int(r.Resource)
			rl[i].value = C.uint64_t(r.Value)
		}
		s.rlimits = &rl[0]
		s.nrlimits = C.int(len(a.rlimits))
	}
	if a.groups != nil {
		g := unsafe.Slice((*C.uint32_t)(carray(len(a.groups), 4)), max(len(a.groups), 1))
		for i, id := range a.groups {
			g[i] = C.uint32_t(id)
		}
		s.set_groups = 1
		s.groups = &g[0]
		s.ngroups = C.int(len(a.groups))
	}
	if a.setCreds {
		s.set_creds = 1
		s.uid = C.uint32_t(a.uid)
		s.gid = C.uint32_t(a.gid)
	}
	s.cgroup_clone = -1
	if len(a.cgroups) > 0 {
		cg := unsafe.Slice((*C.int)(carray(len(a.cgroups), int(unsafe.Sizeof(C.int(0))))), len(a.cgroups))
		for i, j := range a.cgroups {
			cg[i] = C.int(j.FD)
			if j.Clone {
				if s.cgroup_clone >= 0 {
					return nil, errors.New("BUG: two v2 cgroups to join")
				}
				s.cgroup_clone = C.int(i)
			}
		}
		s.cgroup_fds = &cg[0]
		s.ncgroup_fds = C.int(len(a.cgroups))
	}
	if a.noClone3 {
		s.no_clone3 = 1
	}
	return s, nil
}

// spawnError says which step of a spawn failed (the C side's stage), on
// what, and why.
func spawnError(a *spawnAttr, s *C.struct_rm_spawn) error {
	detail := ""
	switch s.stage {
	case C.RM_STAGE_EXEC:
		detail = fmt.Sprintf(" %q", a.path)
	case C.RM_STAGE_CHDIR:
		detail = fmt.Sprintf(" %q", a.dir)
	case C.RM_STAGE_CHROOT:
		detail = fmt.Sprintf(" %q", a.chroot)
	case C.RM_STAGE_SETGROUPS:
		detail = fmt.Sprintf(" %v", a.groups)
	case C.RM_STAGE_SETUID:
		detail = fmt.Sprintf(" %d", a.uid)
	case C.RM_STAGE_SETGID:
		detail = fmt.Sprintf(" %d", a.gid)
	case C.RM_STAGE_CGROUP:
		if i := int(s.cgroup_failed); i >= 0 && i < len(a.cgroups) {
			detail = fmt.Sprintf(" %q", a.cgroups[i].Path)
		}
	case C.RM_STAGE_CLONE_CGROUP:
		if i := int(s.cgroup_failed); i >= 0 && i < len(a.cgroups) {
			detail = fmt.Sprintf(" %q", filepath.Dir(a.cgroups[i].Path))
		}
	}
	err := fmt.Errorf("%s%s: %w", stageNames[s.stage], detail, syscall.Errno(s.err))
	if s.stage == C.RM_STAGE_CGROUP || s.stage == C.RM_STAGE_CLONE_CGROUP {
		// A cgroup being removed, a pids limit reached: retried as a
		// passing fault (retry.go), never counted toward max_retry.
		err = cgroupJoinError{err}
	}
	return err
}

// pidfdProc is a real worker. Signals to it go through its pidfd, and to
// its group through the reaper, so a recycled pid is never hit.
type pidfdProc struct {
	pid   int
	pidfd int
	spawn *spawning // its entry in the reaper's owners
}

func (p *pidfdProc) Pid() int { return p.pid }

func (p *pidfdProc) Signal(sig syscall.Signal) error {
	if p.pid <= 0 {
		// Released: kill(0) would hit the arbiter's own group.
		return os.ErrProcessDone
	}
	var err error
	if p.pidfd >= 0 {
		err = unix.PidfdSendSignal(p.pidfd, sig, nil, 0)
	} else {
		// No pidfd (a kernel before 5.2): by pid, under the reaper's
		// lock and only while the worker is unreaped, when its pid is
		// still its own.
		err = theReaper.signal(p.pid, p.spawn, sig, false)
	}
	if err == unix.ESRCH {
		return os.ErrProcessDone
	}
	return err
}

func (p *pidfdProc) SignalGroup(sig syscall.Signal) error {
	if p.pid <= 0 {
		return os.ErrProcessDone
	}
	return theReaper.signal(p.pid, p.spawn, sig, true)
}

func (p *pidfdProc) Release() {
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
	}
	// Never signal a released worker: its pid may be someone else's now.
	p.pid, p.pidfd = 0, -1
}
