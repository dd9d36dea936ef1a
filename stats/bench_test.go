package stats

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// discard is a Sender that drops everything.
type discard struct{}

func (discard) Send(string, []byte) {}

// BenchmarkTick measures one publisher tick (sample and send every topic)
// over 100 sleeping workers. Besides ns/op it reports cpu-ns/op, the
// process's user+system CPU time per tick from getrusage, and
// core-%@1Hz, the share of one core that costs at one tick a second
// (issue #853 is why this matters).
func BenchmarkTick(b *testing.B) {
	const workers = 100
	w := Watcher{Name: "sleepers"}
	for i := range workers {
		cmd := exec.Command("sleep", "1000")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { kill(cmd) })
		w.Procs = append(w.Procs, Process{Pid: cmd.Process.Pid, Wid: i + 1, Started: time.Now()})
	}
	src := &fakeSource{watchers: []Watcher{w}}
	p, err := New(src, discard{}, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	ctx := b.Context()
	if p.collect(ctx) == nil {
		b.Fatal("collect failed")
	}
	before := cpuTime(b)
	b.ResetTimer()
	for b.Loop() {
		snap := p.collect(ctx)
		if snap == nil || len(snap.Watchers[0].Procs) != workers {
			b.Fatal("collect lost workers")
		}
		p.publish(snap)
	}
	cpu := cpuTime(b) - before
	perTick := float64(cpu.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perTick, "cpu-ns/op")
	b.ReportMetric(perTick/1e9*100, "core-%@1Hz")
}

func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
