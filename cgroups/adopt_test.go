package cgroups

import (
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cloexec reports whether fd is open and close-on-exec.
func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("fd %d: %v", fd, err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// A tree handed over keeps its lock fds across an exec until the exec
// fails (HandoverBack), and a tree adopted from its state is the same tree,
// its lock fds close-on-exec again. The exec itself is tested in the
// arbiter's package, where the upgrade is.
func TestHandoverAdopt(t *testing.T) {
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	tr := testTree(t, nil)
	st, err := tr.Handover()
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range tr.LockFDs() {
		if cloexec(t, fd) {
			t.Errorf("lock fd %d is close-on-exec after Handover", fd)
		}
	}
	tr.HandoverBack()
	for _, fd := range tr.LockFDs() {
		if !cloexec(t, fd) {
			t.Errorf("lock fd %d is not close-on-exec after HandoverBack", fd)
		}
	}
	got, err := AdoptTree(h, st)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Dirs(), tr.Dirs()) || got.Name() != tr.Name() || got.KillMethod() != tr.KillMethod() ||
		got.Tracker().Mount != tr.Tracker().Mount || !slices.Equal(got.LockFDs(), tr.LockFDs()) {
		t.Errorf("AdoptTree = %s %v (kill %q, tracker %s, locks %v), want %s %v (kill %q, tracker %s, locks %v)",
			got.Name(), got.Dirs(), got.KillMethod(), got.Tracker(), got.LockFDs(), tr.Name(), tr.Dirs(), tr.KillMethod(), tr.Tracker(), tr.LockFDs())
	}
	for _, c := range []string{Memory, Pids, CPU} {
		if a, b := got.Carrier(c), tr.Carrier(c); (a == nil) != (b == nil) || a != nil && a.Mount != b.Mount {
			t.Errorf("Carrier(%s) = %v, want %v", c, a, b)
		}
	}
	for _, fd := range got.LockFDs() {
		if !cloexec(t, fd) {
			t.Errorf("lock fd %d of the adopted tree is not close-on-exec", fd)
		}
	}
	// A group set up before is adopted as it is; one never made is not.
	if _, err := tr.Group("w").Setup(Limits{PidsMax: 20}); err != nil {
		t.Fatal(err)
	}
	g, err := got.AdoptGroup("w", Limits{PidsMax: 20})
	if err != nil {
		t.Fatal(err)
	}
	js, err := g.Open()
	if err != nil {
		t.Fatalf("Open of an adopted group: %v", err)
	}
	CloseJoins(js)
	if _, err := got.AdoptGroup("none", Limits{}); err == nil || !strings.Contains(err.Error(), "cgroup none of ") {
		t.Errorf("AdoptGroup of a group never made: %v, want an error naming it", err)
	}
}

// AdoptTree verifies what it adopts and names what is wrong, closing
// nothing, so that the state is whole for the way back to the old binary.
// Not parallel: a closed fd's number must not be taken by another test
// meanwhile.
func TestAdoptTreeRefuses(t *testing.T) {
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	tr := testTree(t, nil)
	st, err := tr.Handover()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.HandoverBack)
	ds := st.Dirs[0]
	// Another cgroup's lock fd: the tree's in another hierarchy, or one
	// of the root cgroup where the tree has one hierarchy only.
	var other int
	if len(st.Dirs) > 1 {
		other = st.Dirs[1].LockFD
	} else {
		root, err := unix.Open(path.Dir(ds.Dir), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(root)
		other = root
	}
	devnull, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(devnull)
	// The directory open again: the same directory, but not the open file
	// that holds its lock.
	reopened, err := unix.Open(ds.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(reopened)
	// Last, so that no fd made here takes its number.
	closed, err := unix.Dup(ds.LockFD)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(closed)

	with := func(f func(*TreeState)) TreeState {
		s := st
		s.Dirs = slices.Clone(st.Dirs)
		f(&s)
		return s
	}
	for _, tt := range []struct {
		name string
		st   TreeState
		want []string
	}{
		{"lock fd closed", with(func(s *TreeState) { s.Dirs[0].LockFD = closed }),
			[]string{ds.Dir, "lock fd " + strconv.Itoa(closed), "bad file descriptor", "not inherited"}},
		{"lock fd another file", with(func(s *TreeState) { s.Dirs[0].LockFD = devnull }),
			[]string{ds.Dir, "lock fd " + strconv.Itoa(devnull) + " is another file"}},
		{"lock fd another cgroup's", with(func(s *TreeState) { s.Dirs[0].LockFD = other }),
			[]string{ds.Dir, "is another file"}},
		{"lock fd without the lock", with(func(s *TreeState) { s.Dirs[0].LockFD = reopened }),
			[]string{ds.Dir, "does not hold the directory's lock"}},
		{"directory made anew", with(func(s *TreeState) { s.Dirs[0].Ino++ }),
			[]string{ds.Dir, "made anew during the hand-over"}},
		{"hierarchy not mounted", with(func(s *TreeState) { s.Dirs[0].Mount = "/nowhere" }),
			[]string{ds.Dir, "no hierarchy " + ds.Hierarchy + " mounted at /nowhere"}},
		{"directory elsewhere", with(func(s *TreeState) { s.Dirs[0].Dir += "x" }),
			[]string{ds.Dir + "x", "not this process's tree"}},
		{"another process's tree", with(func(s *TreeState) { s.Name = TreeName(s.Prefix, 1, 1) }),
			[]string{"not this process's (pid " + strconv.Itoa(os.Getpid())}},
		{"no directories", with(func(s *TreeState) { s.Dirs = nil }),
			[]string{"names 0 directories"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := AdoptTree(h, tt.st)
			if err == nil {
				t.Fatal("AdoptTree succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("AdoptTree error %q does not say %q", err, w)
				}
			}
			for _, d := range st.Dirs {
				if cloexec(t, d.LockFD) {
					t.Errorf("lock fd %d of %s is close-on-exec after a refusal; the way back needs it", d.LockFD, d.Dir)
				}
			}
		})
	}

	// Removed: the directory's lock fd is still open, but no path leads
	// to it.
	if err := unix.Rmdir(ds.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := AdoptTree(h, st); err == nil || !strings.Contains(err.Error(), ds.Dir+": no such file or directory (removed during the hand-over)") {
		t.Errorf("AdoptTree of a removed directory: %v, want an error naming it", err)
	}
	// Made again at the same path: another cgroup, whatever its name.
	if err := os.Mkdir(ds.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := AdoptTree(h, st); err == nil || !strings.Contains(err.Error(), ds.Dir+": made anew during the hand-over") {
		t.Errorf("AdoptTree of a directory made anew: %v, want an error naming it", err)
	}
}

// Handover fails on a tree whose lock fd is not open any more (closed
// behind its back) and on a closed tree, naming it, and leaves every lock
// fd close-on-exec, as it was. Not parallel: the closed fd's number must
// not be taken by another test meanwhile.
func TestHandoverFails(t *testing.T) {
	tr := testTree(t, nil)
	fds := tr.LockFDs()
	// The lock fd of the directory handed over last: the others have
	// been kept across the exec by then, and must be given back.
	victim := -1
	for x, d := range tr.dirs {
		if d == tr.Dirs()[len(fds)-1] {
			victim = tr.locks[x]
		}
	}
	saved, err := unix.Dup(victim)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(victim)
	_, err = tr.Handover()
	// Put back before anything can take the number.
	if derr := unix.Dup3(saved, victim, unix.O_CLOEXEC); derr != nil {
		t.Fatal(derr)
	}
	unix.Close(saved)
	if err == nil || !strings.Contains(err.Error(), "lock fd "+strconv.Itoa(victim)+": bad file descriptor") {
		t.Errorf("Handover with lock fd %d closed: %v, want an error naming it", victim, err)
	}
	for _, fd := range fds {
		if !cloexec(t, fd) {
			t.Errorf("lock fd %d is not close-on-exec after a failed Handover", fd)
		}
	}

	if err := tr.Close(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Handover(); err == nil || !strings.Contains(err.Error(), tr.Name()+": closed") {
		t.Errorf("Handover of a closed tree: %v", err)
	}
}
