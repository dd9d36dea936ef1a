package arbiter_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// These tests run an arbiter in a process of its own (the test binary's
// arbiter role, guardrole_test.go) and kill it, or make it exec. They are
// not parallel: the processes they kill are reaped here, where no
// arbiter's reaper runs meanwhile.

// guardINI has four workers in a watcher with cgroup = off and four in the
// arbiter's cgroup tree (where it has one), spawned at once, on several
// spawner threads; each has a child in its process group and writes both
// pids to DIR/<watcher>.<wid>. Their output goes nowhere: an exec closes
// the arbiter's ends of output pipes.
const guardINI = `[watcher:off]
cmd = WORKER ignoreterm DIR/off.$(circus.wid)
numprocesses = 4
cgroup = off
close_child_stdout = true
close_child_stderr = true

[watcher:boxed]
cmd = WORKER ignoreterm DIR/boxed.$(circus.wid)
numprocesses = 4
close_child_stdout = true
close_child_stderr = true
`

// guardRole is an arbiter role process.
type guardRole struct {
	dir    string
	pid    int
	pids   []int            // its workers and their children
	status *unix.WaitStatus // once reaped
}

// exited reaps the role if it has exited. Not testproc.DeadOrZombie: while
// a thread other than the main one execs, the main one is a zombie for a
// moment, though the process lives on.
func (r *guardRole) exited() bool {
	if r.status == nil {
		var ws unix.WaitStatus
		if pid, _ := unix.Wait4(r.pid, &ws, unix.WNOHANG, nil); pid == r.pid {
			r.status = &ws
		}
	}
	return r.status != nil
}

// startGuardRole starts the arbiter role on guardINI, doing then once
// started (arbiter.GuardThenEnv), and waits for its workers' pids; the
// role and everything it started are killed when the test ends.
func startGuardRole(t *testing.T, then string) *guardRole {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	arbtest.WriteINI(t, dir, worker, guardINI)
	out, err := os.Create(filepath.Join(dir, "role.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), arbiter.GuardRoleEnv+"=arbiter", arbiter.GuardDirEnv+"="+dir, arbiter.GuardThenEnv+"="+then)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &guardRole{dir: dir, pid: cmd.Process.Pid}
	t.Cleanup(func() { r.cleanup(t) })
	r.waitMark(t, "started")
	for _, w := range []string{"off", "boxed"} {
		for wid := 1; wid <= 4; wid++ {
			pid, child := waitPids(t, filepath.Join(dir, fmt.Sprintf("%s.%d", w, wid)))
			r.pids = append(r.pids, pid, child)
		}
	}
	return r
}

// exec tells the role, started with then exec or adopt, to exec, and
// waits for the new image's mark name.
func (r *guardRole) exec(t *testing.T, name string) {
	t.Helper()
	if err := syscall.Kill(r.pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	r.waitMark(t, name)
}

// waitMark waits for the role (or the image it exec'd) to leave the mark
// name, failing the test with its output if it dies first.
func (r *guardRole) waitMark(t *testing.T, name string) {
	t.Helper()
	waitFor(t, "the arbiter role's mark "+name, 30*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(r.dir, name))
		return err == nil || r.exited()
	})
	if _, err := os.Stat(filepath.Join(r.dir, name)); err != nil {
		t.Fatalf("the arbiter role exited (%v) before %s:\n%s\n%s", *r.status, name, r.file("role.out"), r.file("arbiter.log"))
	}
}

func (r *guardRole) file(name string) string {
	b, _ := os.ReadFile(filepath.Join(r.dir, name))
	return string(b)
}

var guardianLine = regexp.MustCompile(`msg="guardian (?:started|adopted)" pid=([0-9]+)`)

// guardians returns the pids of the guardians the role's log names, in
// order.
func (r *guardRole) guardians(t *testing.T) []int {
	t.Helper()
	var pids []int
	for _, m := range guardianLine.FindAllStringSubmatch(r.file("arbiter.log"), -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		t.Fatalf("the arbiter role started no guardian:\n%s", r.file("arbiter.log"))
	}
	return pids
}

// kill SIGKILLs the role and waits for every worker and worker's child to
// die: the guardian's work.
func (r *guardRole) kill(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(r.pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every worker and worker's child to die with the arbiter", 10*time.Second, func() bool {
		for _, pid := range r.pids {
			if !testproc.DeadOrZombie(pid) {
				return false
			}
		}
		return true
	})
}

// cleanup kills whatever the test left running, and reaps what was left
// to this process (the role; what a subreaper inherits).
func (r *guardRole) cleanup(t *testing.T) {
	_ = syscall.Kill(r.pid, syscall.SIGKILL)
	for _, pid := range r.pids {
		if !testproc.DeadOrZombie(pid) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	waitFor(t, "the arbiter role to exit", 10*time.Second, r.exited)
	for _, pid := range r.pids {
		waitFor(t, fmt.Sprintf("process %d to die", pid), 10*time.Second, func() bool { return testproc.DeadOrZombie(pid) })
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
	}
	// A guardian that killed removed the role's cgroup tree; one that
	// stood down left it, as the arbiter that shuts down removes it.
	if h, err := cgroups.Detect(); err == nil {
		waitFor(t, "the arbiter role's cgroup tree to be removed", 10*time.Second, func() bool {
			left := h.Trees("ringmaster", r.pid)
			for _, d := range left {
				removeTree(d)
			}
			return len(h.Trees("ringmaster", r.pid)) == 0
		})
	}
}

// removeTree removes the cgroup dir and those below it, deepest first.
func removeTree(dir string) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.IsDir() {
			removeTree(filepath.Join(dir, e.Name()))
		}
	}
	_ = os.Remove(dir)
}

// doomed reports whether pid is dead, or has a SIGKILL pending: one sent
// (a parent-death signal) but not yet acted on.
func doomed(pid int) bool {
	if testproc.DeadOrZombie(pid) {
		return true
	}
	status, err := os.ReadFile(procfs.Path(pid, "status"))
	if err != nil {
		return true
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if k != "SigPnd" && k != "ShdPnd" {
			continue
		}
		if n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64); n&(1<<(syscall.SIGKILL-1)) != 0 {
			return true
		}
	}
	return false
}

// Workers spawned at once on several spawner threads, with cgroup = off
// and in the tree, and their children, die with a SIGKILLed arbiter: the
// guardian kills each worker's process group and the worker.
func TestGuardianKillsWorkersOfKilledArbiter(t *testing.T) {
	r := startGuardRole(t, "wait")
	r.guardians(t)
	r.kill(t)
}

// Issue 18: an arbiter that execs itself (same pid, new image) from a
// thread that forked none of its workers keeps every worker: none has the
// parent-death signal, which that exec would fire for the workers of every
// other thread. The guardian, handed over across the exec, still kills
// them all when the new image is SIGKILLed.
func TestWorkersOutliveArbiterExec(t *testing.T) {
	r := startGuardRole(t, "exec")
	r.exec(t, "execd")
	// Written by the new image: any parent-death signal the exec fired is
	// pending or acted on by now.
	for _, pid := range r.pids {
		if doomed(pid) {
			t.Errorf("process %d was killed by the arbiter's exec", pid)
		}
	}
	r.kill(t)
}

// A guardian killed by hand is replaced by one that knows every worker
// spawned before: they die with the arbiter all the same.
func TestReplacedGuardianKnowsEarlierWorkers(t *testing.T) {
	r := startGuardRole(t, "wait")
	first := r.guardians(t)[0]
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "another guardian", 20*time.Second, func() bool { return len(r.guardians(t)) == 2 })
	r.kill(t)
}

// The new image of an upgrade adopts the old one's guardian
// (startGuardianFrom): SIGKILLed, the guardian kills everything; stopped
// cleanly, the guardian stands down, killing nothing, and is reaped as the
// new image's own.
func TestGuardianAdoptedAcrossExec(t *testing.T) {
	t.Run("SIGKILL", func(t *testing.T) {
		r := startGuardRole(t, "adopt")
		r.exec(t, "adopted")
		if g := r.guardians(t); len(g) != 2 || g[0] != g[1] {
			t.Fatalf("guardians %v, want the one started adopted after the exec:\n%s", g, r.file("arbiter.log"))
		}
		r.kill(t)
	})
	t.Run("clean stop", func(t *testing.T) {
		r := startGuardRole(t, "adopt")
		r.exec(t, "adopted")
		g := r.guardians(t)
		if err := syscall.Kill(r.pid, syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		r.waitMark(t, "stopped")
		if log := r.file("arbiter.log"); !strings.Contains(log, fmt.Sprintf(`msg="guardian stood down" pid=%d`, g[0])) {
			t.Errorf("the adopted guardian did not stand down cleanly:\n%s", log)
		}
		if !testproc.Gone(g[0]) {
			t.Errorf("guardian %d not reaped by the image that adopted it", g[0])
		}
		for _, pid := range r.pids {
			if doomed(pid) {
				t.Errorf("process %d killed by a guardian that stood down", pid)
			}
		}
	})
}
