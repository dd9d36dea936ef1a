package arbiter

import (
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSpawnGuarded measures what the guardian's registration costs a
// spawn: forkExec of /bin/true (until it has execed: CLONE_VFORK), its
// reaping and, with a guardian, the reaper's remove record. Interleaved,
// one of each per iteration, each first in turn, so that a machine busy
// with something else slows both alike: with the parent-death signal, as every spawn was
// before the guardian kept a set of workers (spawn-pdeath); and
// registering with a running guardian without a cgroup tree
// (spawn-guarded: a dup of the pipe's write end, the child's write of its
// record and close, the remove record). Run it with
//
//	go test -run '^$' -bench SpawnGuarded ./arbiter
func BenchmarkSpawnGuarded(b *testing.B) {
	g, err := forkGuardian(nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := g.standDown(); err != nil {
			b.Error(err)
		}
		reap(b, g.pid)
	}()
	l := &guardLink{wfd: g.wfd}
	spawn := func(b *testing.B, l *guardLink) {
		pid, pidfd, err := forkExec(&spawnAttr{path: "/bin/true", argv: []string{"true"}, umask: -1, guard: l}, nil)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(pidfd)
		if l != nil {
			theReaper.mu.Lock()
			ok := l.writeLocked(guardRemove, pid)
			theReaper.mu.Unlock()
			if !ok {
				b.Fatal("remove record not written")
			}
		}
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
			b.Fatalf("wait4 %d: %v, %v", pid, ws, err)
		}
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var pdeath, guarded time.Duration
	timed := func(l *guardLink, d *time.Duration) {
		t0 := time.Now()
		spawn(b, l)
		*d += time.Since(t0)
	}
	i := 0
	for b.Loop() {
		// In turn first, so that neither always follows the other.
		if i++; i%2 == 0 {
			timed(nil, &pdeath)
			timed(l, &guarded)
		} else {
			timed(l, &guarded)
			timed(nil, &pdeath)
		}
	}
	n := float64(b.N) * float64(time.Microsecond)
	b.ReportMetric(float64(pdeath)/n, "µs/spawn-pdeath")
	b.ReportMetric(float64(guarded)/n, "µs/spawn-guarded")
}
