package cgroups

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// leafSuffix ends the name of the leaf cgroup a supervisor moves into:
// PREFIX-PID-supervisor, beside its tree PREFIX-PID.
const leafSuffix = "-supervisor"

// leafName is the name of this process's leaf: one per process, whatever
// the number of its trees.
func leafName(prefix string) string { return TreeName(prefix, os.Getpid(), 1) + leafSuffix }

// leave moves this process out of its own v2 cgroup into a new leaf below
// it, so that controller c can be enabled for the cgroup's children: v2
// allows a non-root cgroup to give controllers to its children only while
// it holds no process itself. This is the situation of a supervisor run as
// a systemd service with Delegate=yes, or as a container's init: alone in
// a cgroup that is its to divide, as systemd's own documentation has
// delegated services do. A cgroup shared with other processes (a login
// shell's session scope) is not the supervisor's to rearrange: then the
// controller stays off, and the error says why and what to do.
func (t *Tree) leave(v2 *Hierarchy, c string) error {
	// Only those in the cgroup itself are in the way: the kernel's rule
	// is about a cgroup's own processes, not its children's.
	ps, err := directProcs(v2.Dir)
	if err != nil {
		return fmt.Errorf("%s: enable controller %s below %s: %w", v2, c, v2.Dir, err)
	}
	self := os.Getpid()
	others := slices.DeleteFunc(ps, func(p int) bool { return p == self })
	if len(others) > 0 || t.leaf != "" {
		if len(others) > 5 {
			others = others[:5]
		}
		return fmt.Errorf("%s: controller %s is available but cannot be enabled below %s: it holds processes other than this one (pids %v), "+
			"and cgroup v2 allows controllers only where no process is; run the arbiter in a cgroup of its own "+
			"(a systemd service with Delegate=yes, a container) and it moves itself into a leaf", v2, c, v2.Dir, others)
	}
	leaf := path.Join(v2.Dir, leafName(t.prefix))
	if err := claimLeaf(leaf); err != nil {
		return fmt.Errorf("%s: controller %s needs this process out of %s: %w", v2, c, v2.Dir, err)
	}
	if err := writeFile(path.Join(leaf, "cgroup.procs"), strconv.Itoa(self)); err != nil {
		releaseLeaf(leaf)
		return fmt.Errorf("%s: controller %s needs this process out of %s: %w", v2, c, v2.Dir, err)
	}
	t.leaf = leaf
	t.moved = fmt.Sprintf("moved this process from %s into %s, so that controllers can be enabled below %s", v2.Dir, leaf, v2.Dir)
	return nil
}

// above returns v2 as the tree is to use it: unchanged, unless this
// process already moved into its leaf (a second tree in one process), in
// which case the tree is made beside the leaf, in the cgroup it left. v2
// may have been read before the move (then the leaf is below it) or after
// (then v2 is the leaf).
func (t *Tree) above(v2 *Hierarchy) *Hierarchy {
	if path.Base(v2.Dir) != leafName(t.prefix) {
		leaf := path.Join(v2.Dir, leafName(t.prefix))
		if ps, _ := directProcs(leaf); slices.Contains(ps, os.Getpid()) {
			t.leaf = leaf
		}
		return v2
	}
	parent := *v2
	parent.Dir, parent.Path = path.Dir(v2.Dir), path.Dir(v2.Path)
	parent.Controllers = readList(os.ReadFile, path.Join(parent.Dir, "cgroup.controllers"))
	parent.Enabled = readList(os.ReadFile, path.Join(parent.Dir, "cgroup.subtree_control"))
	t.leaf = v2.Dir
	return &parent
}

// home is where this process lives in hierarchy x: its own cgroup, or on
// v2 the leaf it moved into.
func (t *Tree) home(x *Hierarchy) string {
	if x.Version == 2 && t.leaf != "" {
		return t.leaf
	}
	return x.Dir
}

// Moved says, for the log, that this process moved itself into a leaf
// cgroup to make the tree, and where; "" when it did not.
func (t *Tree) Moved() string { return t.moved }

// claimLeaf makes the leaf and takes its lock, which this process then
// holds for its life (leafLock), as a tree's owner holds the tree's: a
// sweep beside it leaves it alone. A leaf it holds already (a tree made
// at the same time in this process moved it there) is taken as it is.
func claimLeaf(leaf string) error {
	leafLock.Lock()
	defer leafLock.Unlock()
	if leafLock.dir == leaf {
		return nil
	}
	fd, err := claim(leaf)
	if err != nil {
		return err
	}
	if leafLock.dir != "" {
		unix.Close(leafLock.fd)
	}
	leafLock.dir, leafLock.fd = leaf, fd
	return nil
}

// releaseLeaf removes the leaf this process could not move into, and lets
// its lock go.
func releaseLeaf(leaf string) {
	leafLock.Lock()
	defer leafLock.Unlock()
	_ = unix.Rmdir(leaf)
	if leafLock.dir == leaf {
		unix.Close(leafLock.fd)
		leafLock.dir, leafLock.fd = "", -1
	}
}
