package arbiter

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
)

// BenchmarkSpawnCgroup measures what cgroups add to a spawn: forkExec of
// /bin/true and its reaping, without a cgroup (spawn-none); into a
// watcher's cgroup with all three limits set (spawn-watcher; on this
// machine the v2 tracker and the v1 memory, pids and cpu hierarchies, so
// "cgroups" writes between fork and exec); and into a cgroup per worker,
// made, limited and removed for each spawn (spawn-worker, cgroup =
// worker). Run it as root with
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
