package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Issue 15, item 2: an arbiter in a pid namespace of its own (what a
// container does) beside a running one leaves the running one's cgroup
// tree, and so its workers, alone: a pid it cannot see is not a dead
// arbiter. A tree whose arbiter (and guardian) really died is still swept,
// by an arbiter in a pid namespace too, and what ran in it is killed.
//
// The three arbiters run in a cgroup of the test's own in each hierarchy,
// so that no other test's arbiter, sweeping beside its own tree, takes
// the stale tree first.
func TestCgroupOwnershipAcrossPidNamespaces(t *testing.T) {
	testproc.NeedUnshare(t)
	join := cgownCgroups(t)
	dir := t.TempDir()
	for _, sub := range []string{"a", "b", "c"} {
		if err := os.Mkdir(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	// A, on the host: a worker that leaves a daemon in A's tree.
	iniA := filepath.Join(dir, "a", "circus.ini")
	daemonFile := filepath.Join(dir, "a", "daemon")
	writeINI(t, iniA, fmt.Sprintf("[watcher:d]\ncmd = WORKER daemonize %s\n", daemonFile))
	a := startArbiterIn(t, join, false, iniA)
	var worker, daemon int
	waitFor(t, "A's worker and its daemon", 20*time.Second, func() bool {
		b, err := os.ReadFile(daemonFile)
		return err == nil && func() bool { _, err := fmt.Sscanf(string(b), "%d %d", &worker, &daemon); return err == nil }()
	})
	t.Cleanup(func() { _ = syscall.Kill(daemon, syscall.SIGKILL) })
	guard := guarded(t, a)
	if guard == 0 {
		t.Fatalf("A started no guardian:\n%s", a.out.String())
	}
	t.Cleanup(func() { _ = syscall.Kill(guard, syscall.SIGKILL) })
	treesA := treesIn(join)
	if len(treesA) == 0 {
		t.Fatalf("A made no cgroup tree in %v:\n%s", join, a.out.String())
	}
	for _, fd := range fdTargets(worker) {
		if slices.Contains(treesA, fd) {
			t.Errorf("A's worker %d holds an fd on its arbiter's tree %s (the owner's lock must not reach a worker)", worker, fd)
		}
	}

	// B, in a pid namespace of its own, where A's pid does not exist.
	iniB := filepath.Join(dir, "b", "circus.ini")
	writeINI(t, iniB, fmt.Sprintf("[watcher:b]\ncmd = WORKER describe %s\n", filepath.Join(dir, "b", "w.json")))
	b := startArbiterIn(t, join, true, iniB)
	waitFor(t, "B's worker", 20*time.Second, func() bool { return readPid(filepath.Join(dir, "b", "w.json")) > 0 })
	for _, pid := range []int{worker, daemon} {
		if testproc.DeadOrZombie(pid) {
			t.Errorf("A's process %d was killed when B started in a pid namespace of its own", pid)
		}
	}
	for _, d := range treesA {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("A's tree %s: %v, after B started", d, err)
		}
		if !strings.Contains(b.out.String(), d) {
			t.Errorf("B does not say it left A's tree %s alone:\n%s", d, b.out.String())
		}
	}
	if out := b.out.String(); strings.Contains(out, "removed the cgroup") || !strings.Contains(out, `msg="cgroup tree left alone"`) {
		t.Errorf("B removed a tree, or does not say what it left alone and why:\n%s", out)
	}
	bWorker := nsWorker(t, b, readPid(filepath.Join(dir, "b", "w.json")))
	treesB := slices.DeleteFunc(treesIn(join), func(d string) bool { return slices.Contains(treesA, d) })

	// A dies, and so does its guardian before it can act: A's tree is
	// stale, with the daemon still in it.
	if err := syscall.Kill(guard, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(a.cmd.Process.Pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-a.done
	a.done <- nil
	// The guardian, which would kill the tree, holds its locks the while.
	for _, d := range treesA {
		if !locked(t, d) {
			t.Errorf("A's tree %s is not locked while A's guardian lives", d)
		}
	}
	if err := syscall.Kill(guard, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// With its guardian dead too, nothing kills A's worker (it has no
	// parent-death signal, which an upgrade in place would fire): it
	// waits, with the daemon, for the next arbiter's sweep.
	waitFor(t, "A's guardian to die", 10*time.Second, func() bool { return testproc.DeadOrZombie(guard) })
	for _, d := range treesA {
		if locked(t, d) {
			t.Errorf("A's tree %s is still locked once A and its guardian are dead", d)
		}
	}
	if testproc.DeadOrZombie(daemon) {
		t.Fatalf("the daemon %d died with A; the test needs it left in A's tree", daemon)
	}

	// C, in another pid namespace, sweeps A's tree and nothing else.
	iniC := filepath.Join(dir, "c", "circus.ini")
	writeINI(t, iniC, fmt.Sprintf("[watcher:c]\ncmd = WORKER describe %s\n", filepath.Join(dir, "c", "w.json")))
	c := startArbiterIn(t, join, true, iniC)
	waitFor(t, "C's worker", 20*time.Second, func() bool { return readPid(filepath.Join(dir, "c", "w.json")) > 0 })
	waitFor(t, "the worker and the daemon in A's stale tree to be killed", 10*time.Second, func() bool {
		return testproc.DeadOrZombie(daemon) && testproc.DeadOrZombie(worker)
	})
	for _, d := range treesA {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("A's stale tree %s is still there after C started", d)
		}
		if !regexp.MustCompile(`msg="removed the cgroup of an arbiter that died, killing what ran in it" dir=` + regexp.QuoteMeta(d) + `\b`).MatchString(c.out.String()) {
			t.Errorf("C does not say it removed A's stale tree %s:\n%s", d, c.out.String())
		}
	}
	if testproc.DeadOrZombie(bWorker) {
		t.Errorf("B's worker %d was killed when C started", bWorker)
	}
	for _, d := range treesB {
		if _, err := os.Stat(d); err != nil {
			t.Errorf("B's tree %s: %v, after C started", d, err)
		}
	}
	stopNS(t, b)
	stopNS(t, c)
}

// cgownCgroups makes a cgroup of the test's own below the test process's
// cgroup in each hierarchy an arbiter uses, removed when the test ends,
// and returns their directories.
func cgownCgroups(t *testing.T) []string {
	t.Helper()
	h, err := cgroups.Detect()
	if err != nil {
		t.Skip(err)
	}
	var dirs []string
	for _, x := range h.Hierarchies {
		if x.ReadOnly || (x.Version == 1 && !x.Has(cgroups.Memory) && !x.Has(cgroups.Pids) && !x.Has(cgroups.CPU) && !x.Has(cgroups.Freezer)) {
			continue
		}
		d := path.Join(x.Dir, fmt.Sprintf("rmtest-cgown-%d", os.Getpid()))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	if len(dirs) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no writable cgroup hierarchy on %s (CI's host has them)", h)
		}
		t.Skipf("no writable cgroup hierarchy on %s", h)
	}
	t.Cleanup(func() {
		for _, d := range dirs {
			removeCgroup(t, d)
		}
	})
	return dirs
}

// removeCgroup removes the cgroup d and those below it, deepest first,
// once what was in them is gone.
func removeCgroup(t *testing.T, d string) {
	ents, _ := os.ReadDir(d)
	for _, e := range ents {
		if e.IsDir() {
			removeCgroup(t, path.Join(d, e.Name()))
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := syscall.Rmdir(d)
		if err == nil || err == syscall.ENOENT {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("remove %s: %v", d, err)
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startArbiterIn starts an arbiter in the cgroups join, with ns in a pid
// namespace (and a /proc) of its own, as a container would: unshare forks
// it as the namespace's pid 1.
func startArbiterIn(t *testing.T, join []string, ns bool, ini string) *arbiterProc {
	t.Helper()
	args := []string{"-c", `IFS=:
for d in $RM_CGOWN_JOIN; do echo $$ > "$d/cgroup.procs" || exit 97; done
exec "$@"`, "sh"}
	if ns {
		args = append(args, "unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
	}
	args = append(args, arbiterBin, ini)
	cmd := exec.Command("sh", args...)
	cmd.Env = append(os.Environ(), "RM_CGOWN_JOIN="+strings.Join(join, ":"))
	return startArbiterCmd(t, cmd)
}

// nsArbiter returns the pid, in the test's namespace, of the arbiter that
// unshare forked.
func nsArbiter(t *testing.T, p *arbiterProc) int {
	t.Helper()
	pid := p.cmd.Process.Pid
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 1 {
		t.Fatalf("unshare %d has children %q, want the arbiter alone", pid, f)
	}
	child, _ := strconv.Atoi(f[0])
	return child
}

// nsWorker returns the pid, in the test's namespace, of the arbiter's
// child whose pid in the arbiter's namespace is nspid (its describe report's).
func nsWorker(t *testing.T, p *arbiterProc, nspid int) int {
	t.Helper()
	arb := nsArbiter(t, p)
	// Each thread lists the children it forked, and the arbiter forks on
	// a thread of its own.
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", arb))
	if err != nil {
		t.Fatal(err)
	}
	var children []string
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		children = append(children, strings.Fields(string(b))...)
	}
	for _, f := range children {
		st, _ := os.ReadFile("/proc/" + f + "/status")
		m := regexp.MustCompile(`(?m)^NSpid:.*\s([0-9]+)$`).FindSubmatch(st)
		if m != nil && string(m[1]) == strconv.Itoa(nspid) {
			pid, _ := strconv.Atoi(f)
			return pid
		}
	}
	t.Fatalf("no child of arbiter %d (children %q) is %d in its pid namespace", arb, children, nspid)
	return 0
}

// stopNS stops the arbiter in p's pid namespace with SIGTERM (unshare
// ignores it) and waits for a clean exit.
func stopNS(t *testing.T, p *arbiterProc) {
	t.Helper()
	if err := syscall.Kill(nsArbiter(t, p), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("arbiter exited with %v after SIGTERM, want 0", err)
		}
		p.done <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("arbiter still running 30s after SIGTERM")
	}
}

// treesIn lists the arbiters' trees (not their leaves) in the cgroups dirs.
func treesIn(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			if e.IsDir() && strings.HasPrefix(e.Name(), "ringmaster-") && !strings.HasSuffix(e.Name(), "-supervisor") {
				out = append(out, path.Join(d, e.Name()))
			}
		}
	}
	return out
}

// fdTargets lists where pid's fds point.
func fdTargets(pid int) []string {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	var out []string
	for _, e := range ents {
		if l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, e.Name())); err == nil {
			out = append(out, l)
		}
	}
	return out
}

// locked reports whether another process holds the lock of the cgroup dir.
func locked(t *testing.T, dir string) bool {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil && err != unix.EWOULDBLOCK {
		t.Fatal(err)
	}
	return err == unix.EWOULDBLOCK
}
