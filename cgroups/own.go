package cgroups

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"regexp"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// Who owns a tree: the package documentation's "Ownership" says what is
// decided; this file decides it. flock is the VFS's, which cgroupfs does
// not override, so a lock holds across pid, mount and cgroup namespaces,
// which all reach the same inode (measured on Linux 6.18, on v2 and v1
// directories alike, with `flock -n` from `unshare --pid --fork
// --mount-proc --cgroup`).

// initPidNS is the inode number of the initial pid namespace, fixed by the
// kernel (PROC_PID_INIT_INO, since Linux 3.8).
const initPidNS = 0xEFFFFFFC

// claimWait bounds how long claim waits for a sweeper that locked a
// directory claim had just made (it found it empty and unlocked, and
// removes it): a sweep kills for at most killBudget and waits a second.
const claimWait = 10 * time.Second

// pidNS is the inode number of this process's pid namespace, 0 when /proc
// does not say.
var pidNS = sync.OnceValue(func() uint64 {
	var st unix.Stat_t
	if unix.Stat("/proc/self/ns/pid", &st) != nil {
		return 0
	}
	return st.Ino
})

// leafLock holds this process's lock on its leaf (leaf.go) from the move
// until the process exits: the leaf is where it lives. An in-place
// upgrade, which keeps the pid and so the leaf, passes fd across the exec
// (Tree.Handover), and the new image sets it here (AdoptTree).
var leafLock struct {
	sync.Mutex
	dir string
	fd  int
}

// names matches the trees and leaves of prefix: m[1] is the pid, m[3] the
// pid namespace's inode, empty in the names older versions gave, which
// hold no lock (see legacyDoubt).
func names(prefix string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-([0-9]+)(-[0-9]+)?(?:-ns([0-9]+))?(` + leafSuffix + `)?$`)
}

// Unswept is a tree that [NewTree] found beside its own and left alone,
// for it could not prove its owner gone; Reason says why.
type Unswept struct {
	Dir, Reason string
}

// sweeper sweeps the trees of one prefix beside a new tree, in each
// hierarchy the new tree uses.
type sweeper struct {
	names   *regexp.Regexp
	swept   []string
	unswept []Unswept
	// byPid maps a pid, as each process sees its own, to the processes
	// that have it: read once, for the names of older versions.
	byPid map[int][]int
	// blind says why this process cannot see every process, if it
	// cannot.
	blind string
}

// sweep removes the stale trees of x, killing what is left in them, and
// records what it leaves alone.
func (s *sweeper) sweep(x *Hierarchy) {
	ents, err := os.ReadDir(x.Dir)
	if err != nil {
		return
	}
	self := strconv.Itoa(os.Getpid())
	ns := strconv.FormatUint(pidNS(), 10)
	for _, e := range ents {
		m := s.names.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		dir := path.Join(x.Dir, e.Name())
		switch {
		case m[3] == "":
			pid, _ := strconv.Atoi(m[1])
			if doubt := s.legacyDoubt(pid); doubt != "" {
				s.unswept = append(s.unswept, Unswept{dir, doubt})
				continue
			}
		case m[1] == self && m[3] == ns:
			continue // this process's other trees, or its leaf
		}
		s.remove(x, dir, m[3] != "")
	}
}

// remove takes dir's lock, without waiting for it, kills what is in the
// cgroup and removes it, and then lets the lock go: so a live owner's tree
// is never touched, and two sweepers never work on one tree at once. The
// owner of a tree named by this version (ownerLocks) holds the lock for
// life; those of older versions never did, but their lock keeps sweepers
// apart all the same.
func (s *sweeper) remove(x *Hierarchy, dir string, ownerLocks bool) {
	fd, err := lockDir(dir)
	why := ""
	switch {
	case errors.Is(err, unix.EWOULDBLOCK) && ownerLocks:
		why = "locked: the arbiter that made it lives (or its guardian, still killing what ran in it, or another arbiter sweeping it)"
	case errors.Is(err, unix.EWOULDBLOCK):
		why = "locked by another arbiter sweeping it"
	case errors.Is(err, fs.ErrNotExist):
		return // removed meanwhile, by its owner or another sweep
	case err != nil:
		why = err.Error()
	}
	if why != "" {
		s.unswept = append(s.unswept, Unswept{dir, why})
		return
	}
	defer unix.Close(fd)
	killDir(x, dir)
	waitDir(x, dir, time.Now().Add(time.Second))
	if err := removeAll(dir); err != nil {
		s.unswept = append(s.unswept, Unswept{dir, "stale, and what ran in it was killed, but not removed yet: " + err.Error()})
		return
	}
	s.swept = append(s.swept, dir)
}

// lockDir opens dir and takes its lock, without waiting: EWOULDBLOCK
// says another process holds it. It fails with ErrNotExist when dir is
// gone, or is no longer the directory it locked (removed and made anew
// between the open and the lock), so that a lock is never taken on a
// directory that no path leads to.
func lockDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("lock %s: %w", dir, err)
	}
	if !same(fd, dir) {
		unix.Close(fd)
		return -1, fmt.Errorf("lock %s: %w", dir, fs.ErrNotExist)
	}
	return fd, nil
}

// same reports whether the directory open at fd is still the one at dir.
func same(fd int, dir string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(fd, &a) == nil && unix.Stat(dir, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// claim makes the directory dir and returns an fd holding its lock, for
// the caller to keep as long as it owns dir. A sweeper may find dir
// between the mkdir and the lock, empty and unlocked, and remove it:
// claim waits for it and makes dir anew. A dir that exists already is
// taken over only if its lock is free and nothing is in it (a dead owner's
// leftover that a sweep could not remove a moment ago); otherwise it
// belongs to someone else, and claim fails.
func claim(dir string) (int, error) {
	for try := 0; ; try++ {
		err := os.Mkdir(dir, 0o755)
		if errors.Is(err, fs.ErrExist) {
			return adopt(dir)
		}
		if err != nil {
			return -1, err
		}
		fd, err := lockMade(dir, time.Now().Add(claimWait))
		if !errors.Is(err, fs.ErrNotExist) || try == 3 {
			return fd, err
		}
	}
}

// lockMade takes the lock of dir, which the caller has just made, waiting
// until deadline for a sweeper that holds it. It fails with ErrNotExist
// when the sweeper removed dir meanwhile.
func lockMade(dir string, deadline time.Time) (int, error) {
	for pause := time.Millisecond; ; pause = min(2*pause, 50*time.Millisecond) {
		fd, err := lockDir(dir)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return fd, err
		}
		if time.Now().After(deadline) {
			return -1, fmt.Errorf("%w (a sweep held it for %s)", err, claimWait)
		}
		time.Sleep(pause)
	}
}

// adopt takes over dir, which exists already, if its lock is free and it
// is empty: no process, no cgroup below it.
func adopt(dir string) (int, error) {
	fd, err := lockDir(dir)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return -1, fmt.Errorf("%s exists and another process holds its lock", dir)
	}
	if err != nil {
		return -1, err
	}
	ps, _ := directProcs(dir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			ps = append(ps, 0)
		}
	}
	if len(ps) > 0 {
		unix.Close(fd)
		return -1, fmt.Errorf("%s exists, left by an arbiter that died, and is not empty yet", dir)
	}
	return fd, nil
}

// legacyDoubt decides about a tree named by an older version, PREFIX-PID,
// whose owner held no lock: it returns "" when the owner is certainly
// gone, else why it may live.
//
// That pid is the owner's in its own pid namespace, which the name does
// not give. So the tree is stale only if this process sees every process
// of the host (it is in the initial pid namespace, with that namespace's
// /proc) and none of them has that pid in its own namespace (the last
// field of NSpid). Checking only this namespace (kill(pid, 0), or whether
// /proc/PID is an arbiter, by its executable or its start time) is what
// issue 15 found wrong: a container's arbiter is pid 1 there, and this
// namespace's pid 1 is init, and anything can be an arbiter's executable.
// Anywhere else, such a tree is left alone; its owner's own sweeps, or an
// arbiter of this version started on the host, remove it.
func (s *sweeper) legacyDoubt(pid int) string {
	const old = "made by an older version, which holds no lock: "
	if s.byPid == nil {
		s.byPid, s.blind = allPids()
	}
	if s.blind != "" {
		return old + "whether its arbiter, pid " + strconv.Itoa(pid) + " in its own pid namespace, lives cannot be known here: " + s.blind
	}
	if ps := s.byPid[pid]; len(ps) > 0 {
		return fmt.Sprintf(old+"process %d has pid %d in its pid namespace and may be that arbiter", ps[0], pid)
	}
	return ""
}

// allPids maps each pid, as its process sees it in its own pid namespace,
// to the pids of the processes that have it, as this process sees them;
// or says why this process cannot see them all.
func allPids() (map[int][]int, string) {
	byPid := map[int][]int{}
	if ns := pidNS(); ns != initPidNS {
		return byPid, "this process is in a pid namespace of its own, from which some processes cannot be seen"
	}
	if l, err := os.Readlink("/proc/self"); err != nil || l != strconv.Itoa(os.Getpid()) {
		return byPid, "/proc is not this pid namespace's"
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return byPid, err.Error()
	}
	var r procfs.Reader
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := r.Read(procfs.Path(pid, "status"))
		if err != nil {
			continue // gone meanwhile
		}
		_, rest, ok := bytes.Cut(b, []byte("\nNSpid:"))
		if !ok {
			return byPid, "/proc/PID/status has no NSpid (Linux 4.1)"
		}
		line, _, _ := bytes.Cut(rest, []byte("\n"))
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if own, err := strconv.Atoi(string(f[len(f)-1])); err == nil {
			byPid[own] = append(byPid[own], pid)
		}
	}
	return byPid, ""
}
