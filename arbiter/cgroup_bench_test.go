package arbiter

import (
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
)

// BenchmarkSpawnCgroup measures what cgroups add to a spawn: forkExec of
// /bin/true and its reaping, without a cgroup (spawn-none); into a
// watcher's cgroup with all three limits set (spawn-watcher; on this
// machine the v2 tracker, entered at the clone, and the v1 memory, pids
// and cpu hierarchies, so "cgroups"-1 writes between fork and exec); and
// into a cgroup per worker, made, limited and removed for each spawn
// (spawn-worker, cgroup = worker). Spawns follow one another at once,
// where a migration is cheap: see BenchmarkRespawnCgroup for spawns after
// a quiet moment, as respawns are. Run it as root with
//
//	go test -run '^$' -bench SpawnCgroup ./arbiter
func BenchmarkSpawnCgroup(b *testing.B) {
	host, err := cgroups.Detect()
	if err != nil {
		b.Fatal(err)
	}
	tree, err := cgroups.NewTree(host, "ringmaster", int(cgroupTrees.Add(1)))
	if err != nil {
		b.Skip(err)
	}
	defer tree.Close(time.Now().Add(5 * time.Second))
	lim := cgroups.Limits{MemoryMax: 256 << 20, PidsMax: 100, CPUQuota: 100}
	watcher := tree.Group("bench")
	if _, err := watcher.Setup(lim); err != nil {
		b.Fatal(err)
	}
	spawn := func(b *testing.B, js []cgroups.Join) {
		pid, pidfd, err := forkExec(&spawnAttr{path: "/bin/true", argv: []string{"true"}, umask: -1, cgroups: js}, nil)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(pidfd)
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
			b.Fatalf("wait4 %d: %v, %v", pid, ws, err)
		}
	}
	js, err := watcher.Open()
	if err != nil {
		b.Fatal(err)
	}
	defer cgroups.CloseJoins(js)
	// The three are interleaved, one of each per iteration, so that a
	// machine busy with something else slows them alike.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var none, inWatcher, inWorker time.Duration
	i := 0
	for b.Loop() {
		t0 := time.Now()
		spawn(b, nil)
		t1 := time.Now()
		spawn(b, js)
		t2 := time.Now()
		i++
		g := watcher.Sub("w" + strconv.Itoa(i))
		if _, err := g.Setup(lim); err != nil {
			b.Fatal(err)
		}
		wjs, err := g.Open()
		if err != nil {
			b.Fatal(err)
		}
		spawn(b, wjs)
		cgroups.CloseJoins(wjs)
		if err := g.Remove(); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		none, inWatcher, inWorker = none+t1.Sub(t0), inWatcher+t2.Sub(t1), inWorker+t3.Sub(t2)
	}
	n := float64(b.N) * float64(time.Millisecond)
	b.ReportMetric(float64(none)/n, "ms/spawn-none")
	b.ReportMetric(float64(inWatcher)/n, "ms/spawn-watcher")
	b.ReportMetric(float64(inWorker)/n, "ms/spawn-worker")
	b.ReportMetric(float64(len(js)), "cgroups")
}

// BenchmarkRespawnCgroup measures forkExec of /bin/true (until it has
// execed: CLONE_VFORK) as a respawn sees it, after a quiet moment: after
// one, the first migration into a cgroup waits for an RCU grace period
// (reference/kernel-facts.md §1). Each iteration pauses respawnGap before
// each of four spawns: without a cgroup (none); into a watcher's v2
// cgroup with clone3 CLONE_INTO_CGROUP, the default (v2-clone3); the same
// with the fallback, clone() and a write to cgroup.procs (v2-write); and
// with cgroup.memory_max, joining the v1 memory hierarchy too, where it is
// v1 (v2-clone3+v1-memory). It reports the median of each; it takes
// about half a second per iteration:
//
//	go test -run '^$' -bench RespawnCgroup -benchtime 20x ./arbiter
func BenchmarkRespawnCgroup(b *testing.B) {
	const respawnGap = 100 * time.Millisecond
	host, err := cgroups.Detect()
	if err != nil {
		b.Fatal(err)
	}
	tree, err := cgroups.NewTree(host, "ringmaster", int(cgroupTrees.Add(1)))
	if err != nil {
		b.Skip(err)
	}
	defer tree.Close(time.Now().Add(5 * time.Second))
	if tree.Tracker().Version != 2 {
		b.Skipf("workers are tracked in %s here, not v2", tree.Tracker())
	}
	open := func(name string, lim cgroups.Limits) []cgroups.Join {
		g := tree.Group(name)
		if _, err := g.Setup(lim); err != nil {
			b.Fatal(err)
		}
		js, err := g.Open()
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cgroups.CloseJoins(js) })
		return js
	}
	plain := open("plain", cgroups.Limits{})
	limited := open("limited", cgroups.Limits{MemoryMax: 256 << 20})
	cases := []struct {
		name     string
		joins    []cgroups.Join
		noClone3 bool
		took     []time.Duration
	}{
		{"none", nil, false, nil},
		{"v2-clone3", plain, false, nil},
		{"v2-write", plain, true, nil},
		{"v2-clone3+v1-memory", limited, false, nil},
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for b.Loop() {
		for i := range cases {
			c := &cases[i]
			// The quiet moment is what is measured, not a wait for
			// something to happen.
			time.Sleep(respawnGap)
			a := &spawnAttr{path: "/bin/true", argv: []string{"true"}, umask: -1, cgroups: c.joins, noClone3: c.noClone3}
			t0 := time.Now()
			pid, pidfd, err := forkExec(a, nil)
			c.took = append(c.took, time.Since(t0))
			if err != nil {
				b.Fatal(err)
			}
			if c.joins != nil && a.clonedIn == c.noClone3 {
				b.Logf("%s: clonedIn = %v (no clone3 with CLONE_INTO_CGROUP here?)", c.name, a.clonedIn)
			}
			unix.Close(pidfd)
			var ws unix.WaitStatus
			if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
				b.Fatalf("wait4 %d: %v, %v", pid, ws, err)
			}
		}
	}
	// Medians: on a shared machine a few spawns wait for a CPU far
	// longer than any cgroup costs, and would swamp a mean.
	for _, c := range cases {
		slices.Sort(c.took)
		b.ReportMetric(float64(c.took[len(c.took)/2])/float64(time.Millisecond), "ms-median/"+c.name)
	}
}
