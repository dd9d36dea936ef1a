package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// An in-place upgrade (the arbiter executing its new binary, same pid)
// keeps its tree: the directories stay, and so do the locks, because the
// fds that hold them cross the exec (close-on-exec cleared) and are named
// in the state the new image reads. They are never closed and opened
// again: a lock lives as long as an open file that holds it, and a moment
// without one is a moment in which another arbiter's sweep may take the
// tree for a dead one's and kill what runs in it. Nothing else is kept
// open across it: a group's files are opened at each spawn and closed
// after it, and OOM kills are counted from files read when due.

// TreeState is a [Tree] as an in-place upgrade carries it across the exec,
// made by [Tree.Handover] and taken by [AdoptTree]. It is plain JSON-able
// data; the fds it names are inherited, under the same numbers.
type TreeState struct {
	// Name and Prefix are the tree's (see [TreeName]).
	Name   string `json:"name"`
	Prefix string `json:"prefix"`
	// Dirs are the tree's directories, one per hierarchy, sorted by path.
	Dirs []DirState `json:"dirs"`
	// Tracker is the index in Dirs of the tracker's directory; Carriers
	// maps a controller to the index of its carrier's.
	Tracker  int            `json:"tracker"`
	Carriers map[string]int `json:"carriers,omitempty"`
	// Kill and Notes are what [Tree.KillMethod] and [Tree.Notes] say.
	Kill  string   `json:"kill"`
	Notes []string `json:"notes,omitempty"`
	// Leaf is the v2 cgroup this process moved into beside the tree (see
	// "Trees and groups" in the package documentation), with the fd that
	// holds its lock; nil when it did not move. Moved is [Tree.Moved].
	Leaf  *DirState `json:"leaf,omitempty"`
	Moved string    `json:"moved,omitempty"`
}

// DirState is one directory of a [TreeState] and the inherited fd that
// holds its lock.
type DirState struct {
	// Hierarchy names the hierarchy as [Hierarchy.String] does ("v2", "v1
	// memory"), Mount is where it is mounted: together they find it in
	// the new image's [Host].
	Hierarchy string `json:"hierarchy"`
	Mount     string `json:"mount"`
	Dir       string `json:"dir"`
	LockFD    int    `json:"lock_fd"`
	// Dev and Ino identify Dir when it was handed over: a directory of
	// the same path made meanwhile is another cgroup.
	Dev uint64 `json:"dev"`
	Ino uint64 `json:"ino"`
}

// Handover describes the tree for an in-place upgrade and clears the
// close-on-exec flag of the fds that hold its locks (and its leaf's), so
// that the new image inherits them. The tree stays whole and in use: if
// the exec fails, [Tree.HandoverBack] sets the flags again. It fails on a
// closed tree, or when an fd cannot be kept, with every flag as it was.
func (t *Tree) Handover() (TreeState, error) {
	if t.closed.Load() {
		return TreeState{}, fmt.Errorf("cgroups: hand over tree %s: closed", t.name)
	}
	st := TreeState{Name: t.name, Prefix: t.prefix, Kill: t.kill, Notes: t.notes, Moved: t.moved, Carriers: map[string]int{}}
	var xs []*Hierarchy
	for x := range t.dirs {
		xs = append(xs, x)
	}
	slices.SortFunc(xs, func(a, b *Hierarchy) int { return strings.Compare(t.dirs[a], t.dirs[b]) })
	for i, x := range xs {
		ds, err := describe(x.String(), x.Mount, t.dirs[x], t.locks[x])
		if err != nil {
			t.HandoverBack()
			return TreeState{}, fmt.Errorf("cgroups: hand over tree %s: %w", t.name, err)
		}
		st.Dirs = append(st.Dirs, ds)
		if x == t.tracker {
			st.Tracker = i
		}
		for c, cx := range t.carriers {
			if cx == x {
				st.Carriers[c] = i
			}
		}
	}
	leaf, err := t.handLeaf()
	if err != nil {
		t.HandoverBack()
		return TreeState{}, fmt.Errorf("cgroups: hand over tree %s: %w", t.name, err)
	}
	st.Leaf = leaf
	return st, nil
}

// handLeaf is Handover's part for the leaf this process moved into, if it
// did: its lock is the process's, not the tree's (see leafLock).
func (t *Tree) handLeaf() (*DirState, error) {
	leafLock.Lock()
	defer leafLock.Unlock()
	if t.leaf == "" || leafLock.dir != t.leaf {
		return nil, nil
	}
	mount := ""
	for x := range t.dirs {
		if x.Version == 2 {
			mount = x.Mount
		}
	}
	ds, err := describe("v2", mount, t.leaf, leafLock.fd)
	if err != nil {
		return nil, err
	}
	return &ds, nil
}

// describe identifies dir, whose lock fd holds, and keeps fd across the
// exec.
func describe(hierarchy, mount, dir string, fd int) (DirState, error) {
	var s unix.Stat_t
	if err := unix.Fstat(fd, &s); err != nil {
		return DirState{}, fmt.Errorf("%s: lock fd %d: %w", dir, fd, err)
	}
	if err := handover.KeepFD(fd); err != nil {
		return DirState{}, fmt.Errorf("%s: keep lock fd %d across the exec: %w", dir, fd, err)
	}
	return DirState{Hierarchy: hierarchy, Mount: mount, Dir: dir, LockFD: fd, Dev: uint64(s.Dev), Ino: s.Ino}, nil
}

// HandoverBack sets the close-on-exec flag of the tree's lock fds again,
// after an exec that failed: no worker spawned from now on may inherit a
// lock of the tree.
func (t *Tree) HandoverBack() {
	for _, fd := range t.LockFDs() {
		handover.CloseOnExec(fd)
	}
	leafLock.Lock()
	defer leafLock.Unlock()
	if t.leaf != "" && leafLock.dir == t.leaf {
		handover.CloseOnExec(leafLock.fd)
	}
}

// AdoptTree takes over, in the new image of an in-place upgrade, the tree
// that st describes, made by the same process before its exec: nothing is
// made, nothing is swept, and the locks are the inherited fds, which it
// marks close-on-exec again. It verifies what it adopts, and fails with
// an error naming the directory and what is wrong: the tree is not this
// process's (another pid or pid namespace), a hierarchy of st is not
// mounted here or the directory is not below this process's cgroup in it,
// the directory is gone or was made anew, or a lock fd is closed, is
// another file, or does not hold the lock. On failure it closes nothing,
// so that the state is whole for the way back to the old binary.
func AdoptTree(h *Host, st TreeState) (*Tree, error) {
	t := &Tree{
		name:     st.Name,
		prefix:   st.Prefix,
		carriers: map[string]*Hierarchy{},
		dirs:     map[*Hierarchy]string{},
		locks:    map[*Hierarchy]int{},
		kill:     st.Kill,
		notes:    st.Notes,
		moved:    st.Moved,
	}
	fail := func(err error) (*Tree, error) {
		return nil, fmt.Errorf("cgroups: adopt tree %s: %w", st.Name, err)
	}
	if err := t.ours(); err != nil {
		return fail(err)
	}
	if len(st.Dirs) == 0 || st.Tracker < 0 || st.Tracker >= len(st.Dirs) {
		return fail(fmt.Errorf("the state names %d directories and the tracker's as number %d", len(st.Dirs), st.Tracker))
	}
	if st.Leaf != nil {
		if err := checkLock(*st.Leaf); err != nil {
			return fail(fmt.Errorf("leaf: %w", err))
		}
		t.leaf = st.Leaf.Dir
	}
	xs := make([]*Hierarchy, len(st.Dirs))
	for i, ds := range st.Dirs {
		x, err := t.find(h, ds)
		if err != nil {
			return fail(err)
		}
		if err := checkLock(ds); err != nil {
			return fail(err)
		}
		xs[i], t.dirs[x], t.locks[x] = x, ds.Dir, ds.LockFD
	}
	t.tracker = xs[st.Tracker]
	for c, i := range st.Carriers {
		if i < 0 || i >= len(xs) {
			return fail(fmt.Errorf("the carrier of %s is directory number %d of %d", c, i, len(xs)))
		}
		t.carriers[c] = xs[i]
	}
	for _, fd := range t.locks {
		handover.CloseOnExec(fd)
	}
	if st.Leaf != nil {
		handover.CloseOnExec(st.Leaf.LockFD)
		leafLock.Lock()
		leafLock.dir, leafLock.fd = st.Leaf.Dir, st.Leaf.LockFD
		leafLock.Unlock()
	}
	return t, nil
}

// ours checks that the tree's name is this process's: its pid and its pid
// namespace, which an in-place upgrade keeps.
func (t *Tree) ours() error {
	m := names(t.prefix).FindStringSubmatch(t.name)
	if m == nil || m[4] != "" {
		return fmt.Errorf("%q is not the name of a tree of prefix %q", t.name, t.prefix)
	}
	if m[1] != strconv.Itoa(os.Getpid()) || m[3] != strconv.FormatUint(pidNS(), 10) {
		return fmt.Errorf("the tree is not this process's (pid %d, pid namespace %d)", os.Getpid(), pidNS())
	}
	return nil
}

// find returns the hierarchy of h that ds is a directory of, as NewTree
// would use it, checking that ds.Dir is the tree's directory there.
func (t *Tree) find(h *Host, ds DirState) (*Hierarchy, error) {
	for _, x := range h.Hierarchies {
		if x.Mount != ds.Mount || x.String() != ds.Hierarchy {
			continue
		}
		if x.Version == 2 {
			x = t.above(x)
		}
		if want := path.Join(x.Dir, t.name); ds.Dir != want {
			return nil, fmt.Errorf("%s: not this process's tree in %s, which is %s", ds.Dir, x, want)
		}
		return x, nil
	}
	return nil, fmt.Errorf("%s: no hierarchy %s mounted at %s here", ds.Dir, ds.Hierarchy, ds.Mount)
}

// checkLock checks that ds.Dir is the directory it was at the hand-over,
// and that ds.LockFD is open on it and holds its lock.
func checkLock(ds DirState) error {
	var dir, fd unix.Stat_t
	if err := unix.Fstat(ds.LockFD, &fd); err != nil {
		return fmt.Errorf("%s: lock fd %d: %w (not inherited: its close-on-exec was set at the exec, or it was closed)", ds.Dir, ds.LockFD, err)
	}
	if err := unix.Stat(ds.Dir, &dir); err != nil {
		return fmt.Errorf("%s: %w (removed during the hand-over)", ds.Dir, err)
	}
	if uint64(dir.Dev) != ds.Dev || dir.Ino != ds.Ino {
		return fmt.Errorf("%s: made anew during the hand-over (dev %d ino %d, was dev %d ino %d)", ds.Dir, dir.Dev, dir.Ino, ds.Dev, ds.Ino)
	}
	if fd.Dev != dir.Dev || fd.Ino != dir.Ino {
		return fmt.Errorf("%s: lock fd %d is another file (dev %d ino %d), not this directory (dev %d ino %d)", ds.Dir, ds.LockFD, fd.Dev, fd.Ino, dir.Dev, dir.Ino)
	}
	// Taking a lock that this open file holds already changes nothing; one
	// that another open file holds is refused at once.
	if err := unix.Flock(ds.LockFD, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("%s: lock fd %d does not hold the directory's lock: another open file does", ds.Dir, ds.LockFD)
		}
		return fmt.Errorf("%s: lock fd %d: %w", ds.Dir, ds.LockFD, err)
	}
	return nil
}

// AdoptGroup returns the group at rel of a tree adopted by [AdoptTree],
// as [Group.Setup] with limits l made it before the exec, ready for
// [Group.Open]. It writes nothing (the limits set stay as they are); it
// fails, naming the directory, when the group is missing from the tracker
// or from the carrier of one of l's limits.
func (t *Tree) AdoptGroup(rel string, l Limits) (*Group, error) {
	g := t.Group(rel)
	join := []*Hierarchy{t.tracker}
	for _, c := range l.Controllers() {
		if x := t.carriers[c]; x != nil && !slices.Contains(join, x) {
			join = append(join, x)
		}
	}
	for _, x := range join {
		if fi, err := os.Stat(g.Dir(x)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("cgroup %s of %s: missing after the upgrade (%v)", rel, x, err)
		}
	}
	g.join = join
	return g, nil
}
