package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// ownerHelper is the "owner" helper role: it makes a tree of prefix
// $CGROUPS_PREFIX on the host and reports its directories, "tracker DIR"
// and "dirs DIR...", then waits to be killed.
func ownerHelper() {
	h, err := Detect()
	if err != nil {
		fmt.Println("error", err)
		return
	}
	tr, err := NewTree(h, os.Getenv("CGROUPS_PREFIX"), 1)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	fmt.Println("tracker", tr.Group("").Dir(tr.Tracker()))
	fmt.Println("dirs", strings.Join(tr.Dirs(), " "))
}

// sweepHelper is the "sweep" helper role: it makes a tree of prefix
// $CGROUPS_PREFIX on the host, reports what it swept ("swept DIR") and
// what it left alone ("unswept DIR\tREASON"), and removes its tree. With
// $CGROUPS_BIND, it first bind-mounts $CGROUPS_BINDSRC on that cgroup,
// which rmdir then refuses (EBUSY): run it in a mount namespace of its own.
func sweepHelper() {
	if dst := os.Getenv("CGROUPS_BIND"); dst != "" {
		if err := unix.Mount(os.Getenv("CGROUPS_BINDSRC"), dst, "", unix.MS_BIND, ""); err != nil {
			fmt.Println("error", err)
			return
		}
	}
	h, err := Detect()
	if err != nil {
		fmt.Println("error", err)
		return
	}
	tr, err := NewTree(h, os.Getenv("CGROUPS_PREFIX"), 1)
	if err != nil {
		fmt.Println("error", err)
		return
	}
	defer tr.Close(time.Now().Add(5 * time.Second))
	for _, d := range tr.Swept() {
		fmt.Println("swept", d)
	}
	for _, u := range tr.Unswept() {
		fmt.Printf("unswept %s\t%s\n", u.Dir, u.Reason)
	}
}

// inNS starts this test binary as helper role with prefix, as pid 1 of a
// pid namespace (and a /proc) of its own, as a container's supervisor
// runs, and returns unshare's process and the helper's output.
func inNS(t *testing.T, role, prefix string, env ...string) (*exec.Cmd, *bufio.Reader) {
	return unshared(t, []string{"--pid", "--fork", "--mount-proc", "--kill-child"}, role, prefix, env...)
}

// unshared starts this test binary as helper role with prefix and env
// through unshare with opts.
func unshared(t *testing.T, opts []string, role, prefix string, env ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command("unshare", append(opts, os.Args[0])...)
	cmd.Env = append(append(os.Environ(), "CGROUPS_HELPER="+role, "CGROUPS_PREFIX="+prefix), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // and so, by --kill-child, the helper
		_ = cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

// heldElsewhere reports whether an open file of dir other than a new one
// holds its lock, as a sweep would find it.
func heldElsewhere(dir string) bool {
	fd, err := lockDir(dir)
	if err != nil {
		return errors.Is(err, unix.EWOULDBLOCK)
	}
	unix.Close(fd)
	return false
}

// stillHeld reports whether dir's lock is held elsewhere for all of d.
func stillHeld(dir string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !heldElsewhere(dir) {
			return false
		}
	}
	return true
}

// sleeperIn starts sleep in the cgroup dir, outside any pid namespace of
// a test's helper (as a daemon a worker detached), reaped by the test.
func sleeperIn(t *testing.T, dir string) *exec.Cmd {
	t.Helper()
	c := exec.Command("sleep", "300")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = c.Process.Kill()
		<-done
	})
	go func() { _ = c.Wait(); close(done) }()
	if err := writeFile(path.Join(dir, "cgroup.procs"), strconv.Itoa(c.Process.Pid)); err != nil {
		t.Fatal(err)
	}
	return c
}

// Issue 15, item 2: a supervisor in a pid namespace of its own is pid 1
// there, which from here is init, and its tree is no business of a sweep
// from here while it lives: its lock says so. Once it is SIGKILLed, the
// kernel lets the lock go, and the next sweep removes its tree and kills
// what was left in it.
func TestSweepOwnership(t *testing.T) {
	t.Parallel()
	testproc.NeedUnshare(t)
	const prefix = testPrefix + "own"
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	owner, out := inNS(t, "owner", prefix)
	got := map[string]string{}
	for len(got) < 2 {
		k, v, _ := strings.Cut(line(t, out), " ")
		if k == "error" || k == "" {
			t.Fatalf("owner: %s", v)
		}
		got[k] = v
	}
	dirs, tracker := strings.Fields(got["dirs"]), got["tracker"]
	t.Cleanup(func() {
		for _, d := range dirs {
			removeAll(d)
		}
	})
	if len(dirs) == 0 || !slices.Contains(dirs, tracker) {
		t.Fatalf("owner reported tracker %q, dirs %q", tracker, dirs)
	}

	tr, err := NewTree(h, prefix, int(seq.Add(1))+1)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Swept()) > 0 {
		t.Errorf("Swept() = %v beside a live owner, want none", tr.Swept())
	}
	for _, d := range dirs {
		i := slices.IndexFunc(tr.Unswept(), func(u Unswept) bool { return u.Dir == d })
		if i < 0 || !strings.HasPrefix(tr.Unswept()[i].Reason, "locked") {
			t.Errorf("Unswept() = %v, want %s locked", tr.Unswept(), d)
		}
		if _, err := os.Stat(d); err != nil {
			t.Errorf("the live owner's %s: %v", d, err)
		}
	}
	if err := tr.Close(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}

	left := sleeperIn(t, tracker)
	child := nsChild(t, owner.Process.Pid)
	if err := syscall.Kill(child, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// unshare exits once it has reaped the helper, whose files, and so
	// its locks, were closed as it died.
	_ = owner.Wait()
	tr2, err := NewTree(h, prefix, int(seq.Add(1))+1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close(time.Now().Add(5 * time.Second))
	swept := slices.Clone(tr2.Swept())
	slices.Sort(swept)
	if !slices.Equal(swept, dirs) {
		t.Errorf("Swept() = %v once the owner is dead, want %v (unswept: %v)", swept, dirs, tr2.Unswept())
	}
	testproc.WaitFor(t, "the process left in the dead owner's tree to be killed", 5*time.Second, func() bool { return testproc.DeadOrZombie(left.Process.Pid) })
	for _, d := range dirs {
		if _, err := os.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the dead owner's %s: %v, want it removed", d, err)
		}
	}
}

// nsChild returns the one child of unshare, the namespace's pid 1.
func nsChild(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatalf("unshare %d's children: %q", pid, b)
	}
	return child
}

// A tree named by an older version, PREFIX-PID, has no lock: its owner's
// pid is all there is, and means something only in the owner's pid
// namespace, which the name does not give. A sweep from a pid namespace of
// its own leaves every such tree alone; one from the initial namespace,
// which sees every process, removes those whose pid no process has in its
// own namespace, and leaves alone those whose pid some process has (pid
// 1: init, and every container's first process). A tree another sweep is
// removing (its lock held) is left alone too.
func TestSweepLegacy(t *testing.T) {
	t.Parallel()
	testproc.NeedUnshare(t)
	const prefix = testPrefix + "legacy"
	x := ownHierarchy(t)
	// Above the kernel's largest pid_max (2^22): no process has it.
	dead := path.Join(x.Dir, prefix+"-99999999")
	live := path.Join(x.Dir, prefix+"-1")
	for _, d := range []string{dead, live} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { removeAll(d) })
	}
	left := sleeperIn(t, dead)

	_, out := inNS(t, "sweep", prefix)
	unswept := map[string]string{}
	for l := line(t, out); l != ""; l = line(t, out) {
		k, v, _ := strings.Cut(l, " ")
		switch k {
		case "unswept":
			d, why, _ := strings.Cut(v, "\t")
			unswept[d] = why
		case "swept":
			t.Errorf("from a pid namespace of its own: swept %s", v)
		default:
			t.Fatalf("sweep helper: %s", l)
		}
	}
	for _, d := range []string{dead, live} {
		if why := unswept[d]; !strings.Contains(why, "older version") || !strings.Contains(why, "cannot be known here") {
			t.Errorf("from a pid namespace of its own: %s left alone for %q, want a reason naming the older version and the namespace", d, why)
		}
	}
	if testproc.DeadOrZombie(left.Process.Pid) {
		t.Fatalf("the process in %s was killed by a sweep that could not know its owner dead", dead)
	}

	hostView := pidNS() == initPidNS
	h := &Host{Hierarchies: []*Hierarchy{x}}
	// A sweep under way elsewhere: dead's lock is taken.
	other, err := lockDir(dead)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := NewTree(h, prefix, int(seq.Add(1))+1)
	unix.Close(other)
	if err != nil {
		t.Fatal(err)
	}
	tr.Close(time.Now().Add(5 * time.Second))
	wantDead := "locked by another arbiter sweeping it"
	if !hostView {
		wantDead = "cannot be known here"
	}
	if why := reason(tr.Unswept(), dead); !strings.Contains(why, wantDead) {
		t.Errorf("with its lock taken: %s left alone for %q, want %q", dead, why, wantDead)
	}

	tr, err = NewTree(h, prefix, int(seq.Add(1))+1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(time.Now().Add(5 * time.Second))
	if !hostView {
		t.Logf("this test runs in a pid namespace of its own: a sweep from the host's could not be tried")
		if why := reason(tr.Unswept(), dead); !strings.Contains(why, "cannot be known here") {
			t.Errorf("%s left alone for %q, want the pid namespace named", dead, why)
		}
		return
	}
	if !slices.Contains(tr.Swept(), dead) {
		t.Errorf("Swept() = %v, want %s, whose pid no process has (unswept: %v)", tr.Swept(), dead, tr.Unswept())
	}
	testproc.WaitFor(t, "the process in the stale tree to be killed", 5*time.Second, func() bool { return testproc.DeadOrZombie(left.Process.Pid) })
	if why := reason(tr.Unswept(), live); !strings.Contains(why, "has pid 1 in its pid namespace and may be that arbiter") {
		t.Errorf("%s left alone for %q, want the live pid 1 named", live, why)
	}
}

// reason returns why dir is in us, "" if it is not.
func reason(us []Unswept, dir string) string {
	for _, u := range us {
		if u.Dir == dir {
			return u.Reason
		}
	}
	return ""
}

// ownHierarchy returns the hierarchy the host's trees are tracked in, or
// skips the test where there is none.
func ownHierarchy(t *testing.T) *Hierarchy {
	t.Helper()
	tr := testTree(t, nil)
	return tr.Tracker()
}

// A directory is claimed only if it is new, or an empty leftover whose
// lock is free; a sweeper that locked a directory claim had just made
// (and so removes it) is waited for, and the directory made anew.
func TestClaim(t *testing.T) {
	t.Parallel()
	x := ownHierarchy(t)
	n := 0
	dir := func(t *testing.T) string {
		n++
		d := path.Join(x.Dir, fmt.Sprintf("%sclaim-%d-%d", testPrefix, os.Getpid(), n))
		t.Cleanup(func() { removeAll(d) })
		return d
	}
	mkdir := func(t *testing.T, d string) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	held := func(t *testing.T, d string) int {
		fd, err := lockDir(d)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}

	t.Run("new", func(t *testing.T) {
		d := dir(t)
		fd, err := claim(d)
		if err != nil {
			t.Fatal(err)
		}
		if !heldElsewhere(d) {
			t.Errorf("claim(%s) holds no lock", d)
		}
		unix.Close(fd)
		if heldElsewhere(d) {
			t.Errorf("%s still locked once its fd is closed", d)
		}
	})
	t.Run("empty leftover", func(t *testing.T) {
		d := dir(t)
		mkdir(t, d)
		fd, err := claim(d)
		if err != nil {
			t.Fatalf("claim(%s) = %v, want an empty, unlocked leftover taken over", d, err)
		}
		unix.Close(fd)
	})
	for _, tt := range []struct {
		name, want string
		prep       func(t *testing.T, d string)
	}{
		{"locked", "another process holds its lock", func(t *testing.T, d string) {
			fd := held(t, d)
			t.Cleanup(func() { unix.Close(fd) })
		}},
		{"a process in it", "not empty yet", func(t *testing.T, d string) { sleeperIn(t, d) }},
		{"a cgroup below", "not empty yet", func(t *testing.T, d string) { mkdir(t, path.Join(d, "w")) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := dir(t)
			mkdir(t, d)
			tt.prep(t, d)
			fd, err := claim(d)
			if err == nil {
				unix.Close(fd)
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("claim(%s) = %v, want an error saying %q", d, err, tt.want)
			}
			// A child of a parallel test, between its fork and its exec,
			// may hold a copy of the claim's fd, and so its lock, for a
			// moment after claim closed it: only a lock that stays counts.
			if tt.name != "locked" && stillHeld(d, 5*time.Second) {
				t.Errorf("a refused claim left %s locked", d)
			}
		})
	}

	t.Run("a sweeper removes it", func(t *testing.T) {
		d := dir(t)
		mkdir(t, d)
		sweeper := held(t, d)
		res := make(chan error, 1)
		go func() {
			fd, err := lockMade(d, time.Now().Add(time.Minute))
			if err == nil {
				unix.Close(fd)
			}
			res <- err
		}()
		if err := unix.Rmdir(d); err != nil {
			t.Fatal(err)
		}
		unix.Close(sweeper)
		if err := <-res; !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lockMade after the sweeper removed it = %v, want ErrNotExist", err)
		}
	})
	t.Run("a sweeper lets it go", func(t *testing.T) {
		d := dir(t)
		mkdir(t, d)
		sweeper := held(t, d)
		res := make(chan error, 1)
		go func() {
			fd, err := lockMade(d, time.Now().Add(time.Minute))
			if err == nil {
				unix.Close(fd)
			}
			res <- err
		}()
		unix.Close(sweeper)
		if err := <-res; err != nil {
			t.Errorf("lockMade once the sweeper let go = %v, want the lock", err)
		}
	})
	t.Run("a sweeper holds it too long", func(t *testing.T) {
		d := dir(t)
		mkdir(t, d)
		sweeper := held(t, d)
		defer unix.Close(sweeper)
		if fd, err := lockMade(d, time.Now().Add(20*time.Millisecond)); !errors.Is(err, unix.EWOULDBLOCK) {
			if err == nil {
				unix.Close(fd)
			}
			t.Errorf("lockMade past its deadline = %v, want EWOULDBLOCK", err)
		}
	})
}

// A stale tree that cannot be removed after the kill (here, the kernel
// refuses to remove a cgroup that is a mount point, as it refuses one in
// which a process is stuck in an uninterruptible sleep) is reported, with
// the reason, and removed by a later sweep.
func TestSweepNotRemovable(t *testing.T) {
	t.Parallel()
	testproc.NeedUnshare(t)
	const prefix = testPrefix + "busy"
	x := ownHierarchy(t)
	// The name of a tree of this version whose owner is dead: no lock.
	stale := path.Join(x.Dir, prefix+"-77-ns1")
	if err := os.MkdirAll(path.Join(stale, "w"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeAll(stale) })
	left := sleeperIn(t, path.Join(stale, "w"))

	cmd, out := unshared(t, []string{"--mount"}, "sweep", prefix, "CGROUPS_BIND="+path.Join(stale, "w"), "CGROUPS_BINDSRC="+t.TempDir())
	var got []string
	for l := line(t, out); l != ""; l = line(t, out) {
		got = append(got, l)
	}
	_ = cmd.Wait()
	want := "unswept " + stale + "\tstale, and what ran in it was killed, but not removed yet: "
	if !slices.ContainsFunc(got, func(l string) bool {
		return strings.HasPrefix(l, want) && strings.Contains(l, "device or resource busy")
	}) {
		t.Errorf("sweep helper reported %q, want %q naming EBUSY", got, want)
	}
	testproc.WaitFor(t, "the process in the stale tree to be killed", 5*time.Second, func() bool { return testproc.DeadOrZombie(left.Process.Pid) })

	// The mount went with the helper's namespace.
	tr, err := NewTree(&Host{Hierarchies: []*Hierarchy{x}}, prefix, int(seq.Add(1))+1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close(time.Now().Add(5 * time.Second))
	if !slices.Contains(tr.Swept(), stale) {
		t.Errorf("Swept() = %v, want %s (unswept: %v)", tr.Swept(), stale, tr.Unswept())
	}
}
