package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

// sampling measures this process's CPU time with 100 autoscaled watchers
// and no workers, against the same 100 without autoscaling.
func (b *bench) sampling() error {
	const n = 100
	fmt.Printf("sampling: %d watchers, each on a socket of its own (half TCP, half unix), no workers; CPU of this process over %s\n", n, b.o.window)
	var pct [2]float64
	for i, auto := range []bool{true, false} {
		var ini strings.Builder
		for k := range n {
			if k%2 == 0 {
				fmt.Fprintf(&ini, "[socket:s%d]\nhost = 127.0.0.1\nport = 0\n\n", k)
			} else {
				fmt.Fprintf(&ini, "[socket:s%d]\npath = DIR/s%d.sock\n\n", k, k)
			}
			fmt.Fprintf(&ini, "[watcher:w%d]\ncmd = WORKER serial $(circus.sockets.s%d) 100ms\nnumprocesses = 0\n", k, k)
			if auto {
				ini.WriteString("autoscale.min = 0\nautoscale.max = 4\n")
			}
			ini.WriteString("\n")
		}
		p, err := b.start(ini.String(), 0)
		if err != nil {
			return err
		}
		time.Sleep(time.Second) // past the start-up
		if auto && b.o.profile != "" {
			f, err := os.Create(b.o.profile)
			if err != nil {
				return err
			}
			_ = pprof.StartCPUProfile(f)
			defer f.Close()
		}
		u0, s0 := cpuSplit()
		c0, t0 := cpuTime(), time.Now()
		time.Sleep(b.o.window)
		u1, s1 := cpuSplit()
		if b.o.verbose {
			fmt.Printf("  user %s, system %s\n", u1-u0, s1-s0)
		}
		if auto && b.o.profile != "" {
			pprof.StopCPUProfile()
		}
		pct[i] = 100 * float64(cpuTime()-c0) / float64(time.Since(t0))
		p.stop()
	}
	// For scale: what merely waking 10 times a second costs here.
	c0, t0 := cpuTime(), time.Now()
	for time.Since(t0) < b.o.window {
		time.Sleep(sampleRound)
	}
	floor := 100 * float64(cpuTime()-c0) / float64(time.Since(t0))
	fmt.Printf("%-28s %8.3f%% of a core\n", "autoscaled (sampled 10/s)", pct[0])
	fmt.Printf("%-28s %8.3f%% of a core\n", "not autoscaled", pct[1])
	fmt.Printf("%-28s %8.3f%% of a core\n", "a bare loop waking 10/s", floor)
	fmt.Printf("sampling %d sockets 10 times a second: %.3f%% of a core (target under 0.5%%)\n\n", n, pct[0]-pct[1])
	return nil
}

// cpuSplit is this process's user and system time, apart.
func cpuSplit() (user, sys time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

// cpuTime is this process's user and system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
