package cgroups

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Tree is one supervisor's cgroups: a directory named [TreeName] under the
// process's own cgroup in each hierarchy it uses. It is immutable once
// made, Close aside.
type Tree struct {
	name     string
	prefix   string
	tracker  *Hierarchy
	carriers map[string]*Hierarchy
	dirs     map[*Hierarchy]string
	// locks hold the lock on each directory of dirs (own.go) until Close.
	// An in-place upgrade (the arbiter executing its new binary, same
	// pid) keeps the tree by clearing their close-on-exec and passing
	// their numbers to the new image, which must adopt them rather than
	// make a tree anew: a lock lives as long as an fd on it, and is never
	// let go in between. unlock makes Close release them once; closed
	// says it has.
	locks   map[*Hierarchy]int
	unlock  sync.Once
	closed  atomic.Bool
	kill    string
	notes   []string
	swept   []string
	unswept []Unswept
	// leaf is the v2 cgroup this process lives in when it is not the
	// one the tree is made under (see leave); moved says so, for the log.
	leaf  string
	moved string
}

// ErrUnavailable is returned by [NewTree] when no hierarchy can be used:
// none is mounted, or none is writable by this process.
var ErrUnavailable = errors.New("no writable cgroup hierarchy")

// TreeName is the name of the tree of process pid, a pid of this
// process's pid namespace: PREFIX-PID-nsINO for its first,
// PREFIX-PID-SEQ-nsINO for the following ones (several supervisors in one
// process, as in tests), INO being the pid namespace's inode number.
func TreeName(prefix string, pid, seq int) string {
	name := prefix + "-" + strconv.Itoa(pid)
	if seq > 1 {
		name += "-" + strconv.Itoa(seq)
	}
	return name + "-ns" + strconv.FormatUint(pidNS(), 10)
}

// NewTree makes the tree named [TreeName](prefix, this pid, seq) in every
// hierarchy it needs (see the package documentation), holding its lock
// until [Tree.Close], and, in each, removes the trees of the same prefix
// it can prove stale: a supervisor that was killed leaves its tree, and
// what ran in it, behind. The trees it cannot prove stale it leaves alone
// (see "Ownership" in the package documentation and [Tree.Unswept]). It
// returns ErrUnavailable, wrapped with the reasons, when it can make none.
func NewTree(h *Host, prefix string, seq int) (*Tree, error) {
	t := &Tree{
		name:     TreeName(prefix, os.Getpid(), seq),
		prefix:   prefix,
		carriers: map[string]*Hierarchy{},
		dirs:     map[*Hierarchy]string{},
		locks:    map[*Hierarchy]int{},
	}
	sw := &sweeper{names: names(prefix)}
	defer func() { t.swept, t.unswept = sw.swept, sw.unswept }()
	made := map[*Hierarchy]bool{}
	use := func(x *Hierarchy) bool {
		if ok, seen := made[x]; seen {
			return ok
		}
		made[x] = false
		if ok, why := writable(x); !ok {
			t.notes = append(t.notes, x.String()+": "+why)
			return false
		}
		sw.sweep(x)
		dir := path.Join(x.Dir, t.name)
		fd, err := claim(dir)
		if err != nil {
			t.notes = append(t.notes, x.String()+": "+err.Error())
			return false
		}
		t.dirs[x], t.locks[x] = dir, fd
		made[x] = true
		return true
	}

	v2 := h.Unified()
	if v2 != nil {
		v2 = t.above(v2)
	}
	if v2 != nil && use(v2) {
		t.tracker = v2
		t.kill = "v2 cgroup.kill"
		if _, err := os.Stat(path.Join(t.dirs[v2], "cgroup.kill")); err != nil {
			t.kill = "v2 SIGKILL to each process (no cgroup.kill before Linux 5.14)"
			if _, err := os.Stat(path.Join(t.dirs[v2], "cgroup.freeze")); err == nil {
				t.kill = "v2 cgroup.freeze, SIGKILL to each process"
			}
		}
	}
	for _, c := range []string{Memory, Pids, CPU} {
		if v2 != nil && t.dirs[v2] != "" && v2.Has(c) {
			err := t.enableV2(v2, c)
			if err == nil {
				t.carriers[c] = v2
				continue
			}
			t.notes = append(t.notes, err.Error())
		}
		if x := h.V1(c); x != nil && use(x) {
			t.carriers[c] = x
		}
	}
	if t.tracker == nil {
		if x := h.V1(Freezer); x != nil && use(x) {
			t.tracker = x
			t.kill = "v1 freezer"
		}
	}
	if t.tracker == nil {
		for _, c := range []string{Pids, Memory, CPU} {
			if x := t.carriers[c]; x != nil {
				t.tracker = x
				t.kill = "v1 " + c + ", SIGKILL to each process until empty (no freezer)"
				break
			}
		}
	}
	if t.tracker == nil {
		if len(t.notes) == 0 {
			t.notes = append(t.notes, "no cgroup hierarchy is mounted")
		}
		return nil, fmt.Errorf("%w (%s)", ErrUnavailable, strings.Join(t.notes, "; "))
	}
	return t, nil
}

// enableV2 enables controller c for the children of the process's own v2
// cgroup (a delegated cgroup has it available but not yet enabled) and of
// the tree. Below the root the kernel refuses it while that cgroup holds
// processes; when the only one is this process, it moves into a leaf
// first (see leave).
func (t *Tree) enableV2(v2 *Hierarchy, c string) error {
	if !slices.Contains(v2.Enabled, c) {
		own := path.Join(v2.Dir, "cgroup.subtree_control")
		err := writeFile(own, "+"+c)
		if errors.Is(err, unix.EBUSY) {
			if err = t.leave(v2, c); err != nil {
				return err
			}
			// The kernel may still count this process in the cgroup it
			// just left for a moment (seen by crun): retry, bounded.
			for try := 0; ; try++ {
				err = writeFile(own, "+"+c)
				if !errors.Is(err, unix.EBUSY) || try == 20 {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		if err != nil {
			return fmt.Errorf("%s: enable controller %s: %w", v2, c, err)
		}
	}
	if err := writeFile(path.Join(t.dirs[v2], "cgroup.subtree_control"), "+"+c); err != nil {
		return fmt.Errorf("%s: enable controller %s: %w", v2, c, err)
	}
	return nil
}

// Name returns the tree's directory name.
func (t *Tree) Name() string { return t.name }

// Tracker returns the hierarchy every group exists in.
func (t *Tree) Tracker() *Hierarchy { return t.tracker }

// Carrier returns the hierarchy that enforces controller c's limits, or
// nil when none can.
func (t *Tree) Carrier(c string) *Hierarchy { return t.carriers[c] }

// KillMethod says how a group is killed, for the log.
func (t *Tree) KillMethod() string { return t.kill }

// Dirs returns the tree's directory in each hierarchy it uses, sorted.
func (t *Tree) Dirs() []string {
	var ds []string
	for _, d := range t.dirs {
		ds = append(ds, d)
	}
	slices.Sort(ds)
	return ds
}

// Notes are what the tree could not use, and why: a read-only mount, a
// controller that cannot be enabled.
func (t *Tree) Notes() []string { return t.notes }

// Swept are the stale trees of dead processes that NewTree removed.
func (t *Tree) Swept() []string { return t.swept }

// Unswept are the trees beside its own that NewTree left alone, and why:
// those of live supervisors, and those it cannot prove stale.
func (t *Tree) Unswept() []Unswept { return t.unswept }

// LockFDs returns the fds that hold the tree's locks, open until
// [Tree.Close], for a process forked without exec that is to hold them
// as well (the arbiter's guardian: it keeps the tree locked until it has
// killed it). Nothing else may keep them: they are close-on-exec. It
// returns none once Close has let them go.
func (t *Tree) LockFDs() []int {
	if t.closed.Load() {
		return nil
	}
	var fds []int
	for _, fd := range t.locks {
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	return fds
}

// Group returns the group at rel ("web", "web/wid1-4") in the tree. Nothing
// is made until [Group.Setup].
func (t *Tree) Group(rel string) *Group { return &Group{t: t, rel: rel} }

// Close kills every process in the tree, waits until it is empty or the
// deadline passes, removes every directory of it, and then lets its locks
// go; a directory it could not remove is left to the next sweep.
func (t *Tree) Close(deadline time.Time) error {
	root := t.Group("")
	kerr := root.Kill()
	werr := root.Wait(deadline)
	var errs []error
	for _, d := range t.Dirs() {
		if err := removeAll(d); err != nil {
			errs = append(errs, err)
		}
	}
	t.unlock.Do(func() {
		t.closed.Store(true)
		for _, fd := range t.locks {
			unix.Close(fd)
		}
	})
	if len(errs) > 0 {
		return errors.Join(append([]error{kerr, werr}, errs...)...)
	}
	return nil
}

// Trees lists the directories of pid's trees with prefix, in every
// hierarchy of h, in the names of this version and of older ones, pid
// being a pid of this process's pid namespace: for tests to see that
// nothing was left behind.
func (h *Host) Trees(prefix string, pid int) []string {
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `-` + strconv.Itoa(pid) + `(-[0-9]+)?(-ns` + strconv.FormatUint(pidNS(), 10) + `)?$`)
	var out []string
	for _, x := range h.Hierarchies {
		ents, _ := os.ReadDir(x.Dir)
		for _, e := range ents {
			if e.IsDir() && re.MatchString(e.Name()) {
				out = append(out, path.Join(x.Dir, e.Name()))
			}
		}
	}
	return out
}

// removeAll removes dir and the cgroups below it, deepest first; a cgroup
// directory is removed with rmdir, never by removing its files.
func removeAll(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if e.IsDir() {
			if err := removeAll(path.Join(dir, e.Name())); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if err := unix.Rmdir(dir); err != nil && err != unix.ENOENT {
		errs = append(errs, fmt.Errorf("remove %s: %w", dir, err))
	}
	return errors.Join(errs...)
}

// writeFile writes value to a cgroup file in one write, as the kernel
// wants it.
func writeFile(name, value string) error {
	f, err := os.OpenFile(name, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.WriteString(value)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("write %q to %s: %w", value, name, err)
	}
	return nil
}

// Name turns s (a watcher's name) into a cgroup directory name: letters,
// digits, '_' and '-' are kept, anything else becomes '_', and then, so
// that two names never meet, a hash of s is appended. A name that v1 gives
// a meaning ("tasks") is hashed too; dots never remain, so no name can be
// taken for an interface file such as memory.max.
func Name(s string) string {
	b := []byte(s)
	changed := len(b) == 0 || len(b) > 200
	if len(b) > 200 {
		b = b[:200]
	}
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '_'
			changed = true
		}
	}
	switch string(b) {
	case "tasks", "notify_on_release", "release_agent":
		changed = true
	}
	if !changed {
		return s
	}
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%s-%08x", b, h.Sum32())
}
