package arbiter_test

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Issue 14, item 5: a child that blocks before exec (here: it joins its
// watcher's cgroup, which the test froze, as a hung NFS working_dir or a
// slow cgroup migration would hold it) must stall neither the reaping nor
// the spawning of another watcher's workers, and the arbiter must still
// stop once the child moves on.
func TestSpawnStuckChildStallsNothingElse(t *testing.T) {
	r := start(t, `
[watcher:stuck]
cmd = WORKER sleep
graceful_timeout = 1

[watcher:busy]
cmd = WORKER sleep
graceful_timeout = 1
`)
	dir := watcherDir(r, "stuck", "cgroup.freeze")
	if dir == "" {
		if os.Getenv("CI") == "true" && os.Getuid() == 0 {
			t.Fatalf("CI runs as root with cgroups, yet the watcher has no v2 cgroup to freeze: %+v", r.Cgroups())
		}
		t.Skipf("no v2 cgroup with cgroup.freeze to hold a child before exec: %+v", r.Cgroups())
	}
	freeze := func(v string) {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.freeze"), []byte(v), 0); err != nil {
			t.Fatalf("freeze %s: %v", v, err)
		}
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			freeze("0")
		}
	}
	freeze("1")
	t.Cleanup(thaw) // before the arbiter's own cleanup stops it
	waitFor(t, "the cgroup frozen", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		return strings.Contains(string(b), "frozen 1")
	})

	// The stuck watcher's worker dies (SIGKILL reaches a frozen task); its
	// replacement joins the frozen cgroup before exec and stays there, its
	// spawn unfinished.
	old := r.pids(t, "stuck")[0]
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var stuck int
	waitFor(t, "a new child held in the frozen cgroup", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		for _, f := range strings.Fields(string(b)) {
			if pid, _ := strconv.Atoi(f); pid != old {
				stuck = pid
				return true
			}
		}
		return false
	})
	t.Logf("child %d held before exec in %s", stuck, dir)

	// Meanwhile another watcher's worker dies: it is reaped and replaced
	// at once.
	busy := r.pids(t, "busy")[0]
	died := time.Now()
	if err := syscall.Kill(busy, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "busy's dead worker reaped and replaced while a spawn is stuck", 10*time.Second, func() bool {
		p := r.pids(t, "busy")
		return len(p) == 1 && p[0] != busy
	})
	t.Logf("busy's worker %d replaced by %d in %s", busy, r.pids(t, "busy")[0], time.Since(died).Round(time.Millisecond))

	// The stuck watcher's own loop is not held either: the spawn runs
	// beside it, and it answers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	st, err := r.Watcher("stuck").Status(ctx)
	cancel()
	if err != nil || st.State != arbiter.Active {
		t.Errorf("stuck watcher's Status while its spawn is stuck = %v, %v; want an answer, active", st.State, err)
	}

	// A stop of the stuck watcher does not wait for the child to move on:
	// after graceful_timeout its stuck spawn is killed (SIGKILL reaches a
	// task in a frozen cgroup), while the cgroup is still frozen.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Second)
	err = r.Watcher("stuck").Stop(ctx)
	cancel()
	if err != nil {
		t.Fatalf("Stop of the watcher whose spawn is stuck: %v", err)
	}
	if !gone(stuck) {
		t.Errorf("the stuck child %d outlived its watcher's stop", stuck)
	}

	// Shutdown: nothing is left running.
	thaw()
	r.cancel()
	r.stop()
	for _, pid := range []int{stuck, old, busy} {
		waitFor(t, "pid "+strconv.Itoa(pid)+" gone", 10*time.Second, func() bool { return gone(pid) })
	}
}

// Issue 14, item 7: once a worker has been reaped its pid is free, and
// the next process can get it; a process group signal sent for the worker
// after that (the kill of whatever it left in its group) would hit the new
// owner of the pid, which, since every worker leads a group, is a group of
// the same id. The test holds the reaped worker's exit between the reap
// and the watcher, gives its pid to a new group leader of its own, lets
// the exit go on, and checks the newcomer survives.
func TestReapPidReuseSparesNewGroup(t *testing.T) {
	const lastPid = "/proc/sys/kernel/ns_last_pid"
	if f, err := os.OpenFile(lastPid, os.O_WRONLY, 0); err != nil {
		t.Skipf("cannot choose the next pid (%v): pid reuse cannot be forced", err)
	} else {
		f.Close()
	}
	r := start(t, `
[watcher:reuse]
cmd = WORKER sleep
graceful_timeout = 1
`)
	pid := r.pids(t, "reuse")[0]
	held := make(chan struct{})
	release := make(chan struct{})
	restore := arbiter.HoldExits(func(p int) {
		if p == pid {
			close(held)
			<-release
		}
	})
	released := false
	let := func() {
		if !released {
			released = true
			close(release)
		}
	}
	t.Cleanup(restore)
	t.Cleanup(let)

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %d was not reaped within 10s", pid)
	}

	// The pid is free: make it a new group leader's. Other processes of
	// the host fork too, so a try may miss it.
	var leader *os.Process
	var misses []*os.Process
	t.Cleanup(func() {
		for _, p := range append(misses, leader) {
			if p != nil {
				_ = p.Kill()
				// Reaped here, or by the reaper of a test running beside
				// this one (then Wait fails at once): gone either way.
				_, _ = p.Wait()
				waitFor(t, "pid "+strconv.Itoa(p.Pid)+" reaped", 10*time.Second, func() bool { return gone(p.Pid) })
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for leader == nil && time.Now().Before(deadline) {
		if len(misses) >= 200 {
			t.Fatalf("pid %d was not handed out again in 200 tries", pid)
		}
		if syscall.Kill(pid, 0) == nil {
			// A process of a test beside this one (they fork all the
			// time) took the pid first: wait for it to go.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err := os.WriteFile(lastPid, []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Fatal(err)
		}
		p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{Sys: &syscall.SysProcAttr{Setpgid: true}})
		if err != nil {
			t.Fatal(err)
		}
		if p.Pid == pid {
			leader = p
			break
		}
		_ = p.Kill()
		misses = append(misses, p)
	}
	if leader == nil {
		t.Fatalf("pid %d was held by another process for 20s", pid)
	}
	t.Logf("pid %d reaped, now leads a new group (%d misses)", pid, len(misses))

	let()
	waitFor(t, "the watcher to handle the exit", 10*time.Second, func() bool {
		for _, ev := range r.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				return true
			}
		}
		return false
	})
	// The reap event is published after everything the watcher does for
	// an exit; a signal sent then is pending or done by now.
	if killedOrPending(pid) {
		t.Fatalf("the new group leader %d, holding the reaped worker's pid, was killed", pid)
	}
	waitFor(t, "a replacement worker", 10*time.Second, func() bool { return len(r.pids(t, "reuse")) == 1 })
}

// killedOrPending reports whether pid has exited or has SIGKILL pending,
// which it cannot block: either way it is as good as dead.
func killedOrPending(pid int) bool {
	if testproc.DeadOrZombie(pid) {
		return true
	}
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return true
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		if k == "SigPnd" || k == "ShdPnd" {
			mask, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if mask&(1<<(syscall.SIGKILL-1)) != 0 {
				return true
			}
		}
	}
	return false
}

// Issue 14, item 5: with no lock held across the fork, a child can die
// before its spawner has registered it. Its exit must still reach its
// watcher, not be taken for an orphan's, and what it left in its process
// group must still be killed (by the group kill: cgroup = off here, so no
// cgroup kill does it instead). The test holds the spawner right after the
// fork until the worker, a shell that leaves a sleep behind in its group,
// has exited and been reaped.
func TestReapExitBeforeRegistration(t *testing.T) {
	file := filepath.Join(t.TempDir(), "left")
	var child atomic.Int64
	var once sync.Once
	restore := arbiter.HoldForks(func(pid int) {
		once.Do(func() {
			child.Store(int64(pid))
			// On the spawner thread, where t cannot fail the test: a
			// deadline, and the test checks the outcome.
			deadline := time.Now().Add(10 * time.Second)
			for !gone(pid) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		})
	})
	t.Cleanup(restore)
	r := start(t, `
[watcher:early]
cmd = /bin/sh -c "sleep 60 & echo $! >> `+file+`; exit 3"
max_retry = 0
cgroup = off
`)
	pid := int(child.Load())
	if pid == 0 || !gone(pid) {
		t.Fatalf("the worker (pid %d) was not reaped while its spawn was held", pid)
	}
	waitFor(t, "the worker's reap event", 10*time.Second, func() bool {
		for _, ev := range r.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				if ev.ExitCode != 3 {
					t.Errorf("reap of %d: exit code %d, want 3", pid, ev.ExitCode)
				}
				return true
			}
		}
		return false
	})
	for _, ev := range r.events.Of(pubsub.Orphan) {
		if ev.Pid == pid {
			t.Errorf("the worker %d, dead before it was registered, was reported as an orphan", pid)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The first worker's line: its replacements (it crashed) append theirs.
	first, _, _ := strings.Cut(string(b), "\n")
	left, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sleep left in the worker's group killed", 10*time.Second, func() bool { return gone(left) })
}

// Issue 14, item 5: between the end of a fork and the registration of its
// child, the reaper cannot tell that child from an orphan; both exits are
// kept aside until the spawn is registered. Then the child's goes to its
// watcher, and the orphan's is reported as an orphan's.
func TestReapExitsKeptAsideDuringSpawn(t *testing.T) {
	var child atomic.Int64
	var once sync.Once
	hold := make(chan struct{})
	restore := arbiter.HoldRegistration(func(pid int) {
		// The worker only: the arbiter's guardian registers too (a fork
		// of this test binary, without exec).
		// (comm, not cmdline: reading cmdline takes the child's memory
		// lock, which a fork just made may not give at once.)
		if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm"); strings.TrimSpace(string(b)) != filepath.Base(worker) {
			return
		}
		once.Do(func() {
			child.Store(int64(pid))
			<-hold
		})
	})
	t.Cleanup(restore)
	let := sync.OnceFunc(func() { close(hold) })
	t.Cleanup(let)
	r := launch(t, `
[watcher:early]
cmd = WORKER exit 3
max_retry = 0
cgroup = off
`)
	waitFor(t, "a spawn held before registration", 10*time.Second, func() bool { return child.Load() != 0 })
	pid := int(child.Load())
	waitFor(t, "the worker's exit reaped", 10*time.Second, func() bool { return gone(pid) })

	// A child of this process that is no worker dies meanwhile: it may be
	// the held spawn's, for all the reaper knows, until that registers.
	other, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Release()
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other child reaped", 10*time.Second, func() bool { return gone(other.Pid) })
	orphaned := func(p int) bool {
		for _, ev := range r.events.Of(pubsub.Orphan) {
			if ev.Pid == p {
				return true
			}
		}
		return false
	}
	if orphaned(other.Pid) || orphaned(pid) {
		t.Fatalf("an exit was reported as an orphan's while the spawn it may belong to was in flight")
	}

	let()
	waitFor(t, "the worker's reap event", 10*time.Second, func() bool {
		for _, ev := range r.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				return ev.ExitCode == 3
			}
		}
		return false
	})
	waitFor(t, "the other child reported as an orphan", 10*time.Second, func() bool { return orphaned(other.Pid) })
	if orphaned(pid) {
		t.Errorf("the worker %d was reported as an orphan too", pid)
	}
}
