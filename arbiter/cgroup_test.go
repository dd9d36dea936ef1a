package arbiter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// cgroupPath reports which path a test takes: the real one where the
// arbiter found cgroups that enforce what it needs (enforced returns the
// cgroup version doing it, "" where none does), else the fallback, which
// the test then states. On CI's host (root, cgroups writable) the real path
// is required, so that a host that lost them fails instead of passing on
// the fallback.
func cgroupPath(t *testing.T, r *running, what string, enforced func(arbiter.CgroupInfo) string) (real bool) {
	t.Helper()
	info := r.Cgroups()
	if v := enforced(info); v != "" {
		t.Logf("path: %s by cgroup %s (kill: %s; dirs %v)", what, v, info.Kill, info.Dirs)
		return true
	}
	if os.Getenv("CI") == "true" && os.Getuid() == 0 {
		t.Fatalf("CI runs as root on a host with cgroups, yet %s has no cgroup here: %+v", what, info)
	}
	t.Logf("path: none: no cgroup for %s on this host (%s); testing the fallback", what, info.Reason)
	return false
}

// watcherDir returns the directory of a watcher's cgroup in the hierarchy
// where file exists, or "".
func watcherDir(r *running, name, file string) string {
	for _, d := range r.Cgroups().Dirs {
		if _, err := os.Stat(filepath.Join(d, name, file)); err == nil {
			return filepath.Join(d, name)
		}
	}
	return ""
}

// A fork bomb in a worker is stopped by cgroup.pids_max: its forks fail
// once the cgroup holds that many tasks, and the arbiter and the other
// processes of the host are untouched.
func TestCgroupForkBomb(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "bomb")
	r := start(t, `
[watcher:bomb]
cmd = WORKER forkbomb `+file+` 60
respawn = false
cgroup.pids_max = 30
graceful_timeout = 1
`)
	var status string
	waitFor(t, "the fork bomb to end", 20*time.Second, func() bool {
		b, _ := os.ReadFile(file)
		status = string(b)
		return strings.Contains(status, " ")
	})
	var started int
	fmt.Sscanf(status, "%d", &started)
	if !cgroupPath(t, r, "cgroup.pids_max", func(i arbiter.CgroupInfo) string { return i.Pids }) {
		if status != "60 limit reached" {
			t.Fatalf("without a pids controller the bomb should run to its own cap: %q", status)
		}
		t.Logf("fallback: nothing contained the bomb; it stopped at its own cap of 60 children")
		return
	}
	if started >= 30 || !strings.Contains(status, syscall.EAGAIN.Error()) {
		t.Fatalf("forkbomb reported %q; want a fork refused with EAGAIN before 30 children", status)
	}
	dir := watcherDir(r, "bomb", "pids.current")
	b, err := os.ReadFile(filepath.Join(dir, "pids.current"))
	if err != nil {
		t.Fatal(err)
	}
	cur, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if cur > 30 {
		t.Errorf("%s/pids.current = %d, over pids.max 30", dir, cur)
	}
	t.Logf("contained: %d children started before %q; %d tasks in %s", started, status, cur, dir)
	if err := r.Watcher("bomb").Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	// v1 lists a killed process until it is reaped, and the bomb's
	// children are orphans, reaped by the arbiter a moment after the
	// stop: wait for that, bounded.
	waitFor(t, "the bomb's cgroup empty after stop", 5*time.Second, func() bool {
		b, _ = os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		return len(strings.TrimSpace(string(b))) == 0
	})
}

// A worker that daemonizes a grandchild (a new session, out of its process
// group, which the group kill misses) leaves nothing behind once its
// watcher stops: the watcher's cgroup is killed (with cgroup = worker,
// the worker's, when the worker is reaped), and the daemon's kill is
// published once. With cgroup = off it does, which the test shows and then
// cleans up.
func TestCgroupStopKillsDaemons(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"auto", "worker", "off"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "pids")
			r := start(t, `
[watcher:d]
cmd = WORKER daemonize `+file+`
cgroup = `+mode+`
graceful_timeout = 1
`)
			pid, daemon := waitPids(t, file)
			t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
			real := mode != "off" && cgroupPath(t, r, "the cgroup kill on stop", func(i arbiter.CgroupInfo) string { return i.Kill })
			if err := r.Watcher("d").Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if !gone(pid) {
				t.Fatalf("worker %d still runs after Stop", pid)
			}
			if !real {
				// The process-group kill cannot reach it: this is what
				// happens without cgroups.
				if gone(daemon) {
					t.Fatalf("daemon %d died without a cgroup kill", daemon)
				}
				t.Logf("fallback (cgroup = %s): daemon %d outlived its watcher, as without cgroups", mode, daemon)
				return
			}
			// Stop returns after a bounded wait for the kill to take
			// effect; the daemon is then gone or a zombie being reaped.
			waitFor(t, "the daemon to be gone", 5*time.Second, func() bool { return gone(daemon) })
			var kills []pubsub.Event
			for _, ev := range r.events.Of(pubsub.Kill) {
				if ev.Pid == daemon {
					kills = append(kills, ev)
				}
			}
			if len(kills) != 1 || kills[0].Signal != int(syscall.SIGKILL) {
				t.Errorf("kill events for daemon %d: %+v, want one SIGKILL", daemon, kills)
			}
		})
	}
}

// With cgroup = worker, each worker has a cgroup of its own inside the
// watcher's, and what a worker leaves in it dies with it, while the
// watcher runs on.
func TestCgroupPerWorker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := start(t, `
[watcher:w]
cmd = WORKER daemonize `+dir+`/$(circus.wid)
cgroup = worker
numprocesses = 2
`)
	if !cgroupPath(t, r, "the per-worker cgroup kill", func(i arbiter.CgroupInfo) string { return i.Kill }) {
		return
	}
	pid1, daemon1 := waitPids(t, filepath.Join(dir, "1"))
	_, daemon2 := waitPids(t, filepath.Join(dir, "2"))
	wdir := watcherDir(r, "w", "cgroup.procs")
	ents, _ := os.ReadDir(wdir)
	var subs []string
	for _, e := range ents {
		if e.IsDir() {
			subs = append(subs, e.Name())
		}
	}
	if len(subs) != 2 || !strings.HasPrefix(subs[0], "wid1-") || !strings.HasPrefix(subs[1], "wid2-") {
		t.Fatalf("%s holds %v; want a cgroup per worker, wid1-N and wid2-N", wdir, subs)
	}
	os.Remove(filepath.Join(dir, "1"))
	if err := syscall.Kill(pid1, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "worker 1's daemon to die with it", 10*time.Second, func() bool { return gone(daemon1) })
	if gone(daemon2) {
		t.Fatalf("worker 2's daemon %d died with worker 1", daemon2)
	}
	// The replacement gets a cgroup of its own, and the dead worker's goes.
	waitPids(t, filepath.Join(dir, "1"))
	waitFor(t, "worker 1's old cgroup removed", 10*time.Second, func() bool {
		ents, _ := os.ReadDir(wdir)
		n := 0
		for _, e := range ents {
			if e.IsDir() && e.Name() != subs[0] {
				n++
			}
			if e.Name() == subs[0] {
				return false
			}
		}
		return n == 2
	})
}

// cgroup.memory_max makes the kernel kill a worker that allocates past it,
// and the arbiter publishes an oom event before the reap.
func TestCgroupOOM(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:hog]
cmd = WORKER hog 268435456
respawn = false
cgroup.memory_max = 64M
`)
	if !cgroupPath(t, r, "cgroup.memory_max", func(i arbiter.CgroupInfo) string { return i.Memory }) {
		if !strings.Contains(r.log.String(), "key=cgroup.memory_max") {
			t.Errorf("no warning naming cgroup.memory_max in the log")
		}
		return
	}
	waitFor(t, "an oom event", 20*time.Second, func() bool { return len(r.events.Of(pubsub.OOM)) > 0 })
	ev := r.events.Of(pubsub.OOM)[0]
	if ev.Watcher != "hog" || ev.Pid != 0 || !strings.Contains(ev.Reason, "cgroup.memory_max 64M reached: the kernel's OOM killer killed 1 process") {
		t.Fatalf("oom event %+v", ev)
	}
	t.Logf("oom event: %s", ev.Reason)
	var seenOOM bool
	for _, e := range r.events.All() {
		switch e.Kind {
		case pubsub.OOM:
			seenOOM = true
		case pubsub.Reap:
			if !seenOOM || e.ExitCode != -int(syscall.SIGKILL) {
				t.Errorf("reap %+v: want exit code -9, after the oom event", e)
			}
		}
	}
	// The death counts as the OOM killer's, not as a SIGKILL from outside.
	st := restarted(t, r, "hog", 1)
	if e := st.LastExit; e == nil || e.Reason != arbiter.ReasonOOM || e.Signal != syscall.SIGKILL || st.Restarts["oom"] != 1 {
		t.Errorf("LastExit = %+v, Restarts = %v; want one oom death", e, st.Restarts)
	}
}

// A process a worker started, killed by the OOM killer while the worker
// runs on, is reported within a poll, not at the worker's next exit; with a
// cgroup per worker, the event names the worker's cgroup.
func TestCgroupOOMDescendant(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"auto", "worker"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			r := start(t, `
[watcher:parent]
cmd = WORKER spawn hog 268435456
cgroup = `+mode+`
cgroup.memory_max = 64M
`)
			if !cgroupPath(t, r, "cgroup.memory_max", func(i arbiter.CgroupInfo) string { return i.Memory }) {
				return
			}
			pid := r.pids(t, "parent")[0]
			waitFor(t, "an oom event", 20*time.Second, func() bool { return len(r.events.Of(pubsub.OOM)) > 0 })
			ev := r.events.Of(pubsub.OOM)[0]
			want := "cgroup.memory_max 64M reached: the kernel's OOM killer killed 1 process"
			if mode == "worker" {
				want += fmt.Sprintf(" (worker %d's cgroup)", pid)
			}
			if ev.Watcher != "parent" || ev.Reason != want {
				t.Errorf("oom event %+v, want the reason %q", ev, want)
			}
			if gone(pid) || len(r.events.Of(pubsub.Reap)) > 0 {
				t.Errorf("the worker %d died (gone: %v, reaps %v): the test wants it to outlive its child", pid, gone(pid), r.events.Of(pubsub.Reap))
			}
			t.Logf("oom event while worker %d runs: %s", pid, ev.Reason)
			// Reported once: neither the stop nor the worker's exit
			// report it again.
			if err := r.Watcher("parent").Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			if n := len(r.events.Of(pubsub.OOM)); n != 1 {
				t.Errorf("%d oom events after the stop, want 1: %v", n, r.events.Of(pubsub.OOM))
			}
		})
	}
}

// The arbiter's cgroups are gone once Run returns, with what ran in them.
func TestCgroupRemovedAtExit(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:d]
cmd = WORKER daemonize `+file+`
cgroup.pids_max = 50
`)
	_, daemon := waitPids(t, file)
	t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
	if !cgroupPath(t, r, "removal of the arbiter's cgroups", func(i arbiter.CgroupInfo) string { return i.Kill }) {
		return
	}
	dirs := r.Cgroups().Dirs
	if watcherDir(r, "d", "cgroup.procs") == "" || watcherDir(r, "d", "pids.max") == "" {
		t.Fatalf("the watcher's cgroup is not in the tracker and pids hierarchies %v", dirs)
	}
	r.stop()
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s remains after Run returned (%v)", d, err)
		}
	}
	waitFor(t, "the daemon to be gone", 5*time.Second, func() bool { return gone(daemon) })
}

// Removing a watcher removes its cgroup: with what ran in it killed, or,
// with nostop (rm --nostop), with its workers moved back to the arbiter's
// own cgroup to run on.
func TestCgroupRemoveWatcher(t *testing.T) {
	t.Parallel()
	for _, nostop := range []bool{false, true} {
		t.Run(fmt.Sprintf("nostop=%v", nostop), func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "pids")
			r := start(t, `
[watcher:d]
cmd = WORKER daemonize `+file+`
graceful_timeout = 1
`)
			pid, daemon := waitPids(t, file)
			t.Cleanup(func() {
				syscall.Kill(pid, syscall.SIGKILL)
				syscall.Kill(daemon, syscall.SIGKILL)
			})
			if !cgroupPath(t, r, "the watcher's cgroup", func(i arbiter.CgroupInfo) string { return i.Kill }) {
				return
			}
			dir := watcherDir(r, "d", "cgroup.procs")
			if err := r.Remove(context.Background(), "d", nostop); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("%s remains after the watcher was removed (%v)", dir, err)
			}
			if !nostop {
				waitFor(t, "the daemon to be gone", 5*time.Second, func() bool { return gone(daemon) })
				return
			}
			if gone(pid) || gone(daemon) {
				t.Fatalf("rm --nostop killed the worker (%v) or its daemon (%v)", gone(pid), gone(daemon))
			}
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", daemon))
			if strings.Contains(string(b), "ringmaster-") {
				t.Errorf("the daemon is still in the arbiter's cgroups:\n%s", b)
			}
		})
	}
}

// A worker is in its watcher's v2 cgroup (with cgroup = worker, its own
// inside it) from the start: it reads /proc/self/cgroup before anything
// else. It is in a v1 hierarchy only where a limit it has lives (memory,
// with cgroup.memory_max, on a host where memory is v1): a v1 join is a
// migration, which costs milliseconds, while the v2 cgroup is entered at
// the clone, for nothing. The spawner's fallback (clone() and writes to
// cgroup.procs, for kernels without clone3), forced with a test-only knob,
// puts workers in the same places.
func TestCgroupWorkerPlacement(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, keys string
		memory     bool // cgroup.memory_max set
		own        bool // cgroup = worker
		fallback   bool // arbiter.SpawnWithoutClone3
	}{
		{"auto", "", false, false, false},
		{"auto memory_max", "cgroup.memory_max = 256M", true, false, false},
		{"worker", "cgroup = worker", false, true, false},
		{"worker memory_max", "cgroup = worker\ncgroup.memory_max = 256M", true, true, false},
		{"fallback auto", "", false, false, true},
		{"fallback worker memory_max", "cgroup = worker\ncgroup.memory_max = 256M", true, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(t.TempDir(), "cgroup")
			var before []func(*arbiter.Arbiter)
			if tt.fallback {
				before = append(before, arbiter.SpawnWithoutClone3)
			}
			r := start(t, `
[watcher:w]
cmd = /bin/sh
args = -c "cat /proc/self/cgroup > `+file+`.tmp && mv `+file+`.tmp `+file+`; exec sleep 600"
graceful_timeout = 1
`+tt.keys+`
`, before...)
			if !cgroupPath(t, r, "the workers' cgroup", func(i arbiter.CgroupInfo) string { return i.Kill }) {
				return
			}
			info := r.Cgroups()
			if !strings.HasPrefix(info.Kill, "v2") {
				t.Skipf("workers are tracked by %s here, not v2", info.Kill)
			}
			var text string
			waitFor(t, "the worker's /proc/self/cgroup", 10*time.Second, func() bool {
				b, err := os.ReadFile(file)
				text = string(b)
				return err == nil
			})
			cg := map[string]string{}
			for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
				parts := strings.SplitN(line, ":", 3)
				if len(parts) != 3 {
					t.Fatalf("/proc/self/cgroup line %q", line)
				}
				key := parts[1]
				if parts[0] == "0" {
					key = "v2"
				}
				for _, c := range strings.Split(key, ",") {
					cg[c] = parts[2]
				}
			}
			tree := "/" + filepath.Base(info.Dirs[0]) + "/w"
			v2 := cg["v2"]
			if tt.own {
				if !strings.Contains(v2, tree+"/wid1-") {
					t.Errorf("v2 cgroup %q, want .../%s/wid1-N:\n%s", v2, tree, text)
				}
			} else if !strings.HasSuffix(v2, tree) {
				t.Errorf("v2 cgroup %q, want .../%s:\n%s", v2, tree, text)
			}
			for _, c := range []string{"memory", "pids", "cpu", "freezer"} {
				in := strings.Contains(cg[c], tree)
				want := c == "memory" && tt.memory && info.Memory == "v1"
				if in != want {
					t.Errorf("in the v1 %s hierarchy's tree: %v, want %v (cgroup %q)", c, in, want, cg[c])
				}
			}
			t.Logf("worker's cgroups: v2 %s, memory %s (memory_max by %q)", v2, cg["memory"], info.Memory)
		})
	}
}

// A watcher whose cgroup was killed at a stop (a daemon was left in it)
// starts again with workers that live. On this kernel, a child created
// with clone3's CLONE_INTO_CGROUP in a cgroup that had a cgroup.kill is
// killed at birth, every time (its kill sequence is compared with the
// parent's cgroup's): the chaos run saw a pool restarted after a stop
// crash-loop into its flapping limit. A killed cgroup is therefore
// removed and made anew before the next spawn.
func TestCgroupStartAfterKill(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:d]
cmd = WORKER daemonize `+file+`
graceful_timeout = 1
`)
	_, daemon := waitPids(t, file)
	t.Cleanup(func() { syscall.Kill(daemon, syscall.SIGKILL) })
	if kill := cgroupPath(t, r, "the cgroup kill on stop", func(i arbiter.CgroupInfo) string { return i.Kill }); !kill {
		return
	}
	w := r.Watcher("d")
	for round := range 3 {
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the daemon killed with the cgroup", 5*time.Second, func() bool { return gone(daemon) })
		if err := os.Remove(file); err != nil {
			t.Fatal(err)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatalf("round %d: Start: %v", round, err)
		}
		var pid int
		pid, daemon = waitPids(t, file)
		if gone(pid) {
			t.Fatalf("round %d: worker %d died at once", round, pid)
		}
		for _, ev := range r.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				t.Fatalf("round %d: worker %d reaped (exit %d) just after its start", round, pid, ev.ExitCode)
			}
		}
	}
	if n := len(r.events.Of(pubsub.Flapping)); n != 0 {
		t.Errorf("%d flapping events", n)
	}
}
