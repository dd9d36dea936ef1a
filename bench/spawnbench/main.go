// Command spawnbench measures what supervising workers through Ringmaster
// costs compared with a bare floor, in one run and with the same worker
// binary, for the "Speed" targets of issue 2:
//
//   - cold start: from just before arbiter.Run (floor: before its first
//     fork) until all -n workers have reported ready; target at most 1.2x
//     the floor. Measured -rounds times, floor and Ringmaster alternating;
//     min and median are printed.
//   - respawn latency: from SIGKILL of one ready worker until its
//     replacement reports ready, -respawns times, one at a time; target a
//     median and p95 at most the floor's plus 5 ms.
//   - incr (issue 3): Watcher.Incr growing a one-worker pool to 50 until
//     all are ready, against the floor starting 49 more beside one; target
//     at most 1.2x.
//   - restart (issue 3): the command table's restart of a pool of 10
//     examples/httpworker (which drains on SIGTERM and reports readiness
//     on $NOTIFY_SOCKET) while 4 clients send requests, until the reply
//     and all 10 new workers' READY, against that pool's cold start;
//     target at most 1.5x, and no failed request.
//   - idle: this process's own CPU time (getrusage, children excluded) over
//     -idle with -n workers up and quiet, and its VmRSS as it is then (no
//     GC forced); target under 1% of a core and under 30 MB. The figures
//     include spawnbench's own bookkeeping; "RSS before arbiter.New" shows
//     how much of it was there before the arbiter existed.
//
// The floor is a minimal Go launcher: it binds 127.0.0.1:0 and starts the
// workers one after another with os/exec, the listener as their only
// ExtraFiles (fd 3), each waited for by its own goroutine that starts a
// replacement as soon as cmd.Wait returns. Ringmaster gets an equivalent
// Circus config ([socket:web] on 127.0.0.1:0, a watcher running the worker
// with --fd $(circus.sockets.web)) through config.Load, arbiter.New and
// Arbiter.Run in this process. The floor never runs while an Arbiter does,
// since the Arbiter reaps every child of the process.
//
// The worker is bench/benchworker, built once with CGO_ENABLED=0 into a
// temporary directory before anything else. It serves HTTP on fd 3 and then
// reports readiness sd_notify style, one datagram "READY=1\nMAINPID=<pid>"
// to the unixgram socket named by $BENCH_NOTIFY; a worker is ready when its
// datagram arrives here.
//
// Run it from inside the module (it builds the worker with the go command):
//
//	go run ./bench/spawnbench -n 100 -respawns 50 -idle 10s
//
// The watcher has no cgroup keys unless -cgroup (auto, worker, off) or
// -cgroup-memory (its cgroup.memory_max) set them; -quick stops after the
// cold start, respawn and idle table; -spread measures the respawns in
// every round rather than in the last alone, so that a load that changes
// during the run weighs on the floor and Ringmaster alike. Issue 14 (spawning into cgroups
// costs nothing when no limit needs them) adds tighter targets on the
// medians with the default config: a respawn at most the floor's plus
// 1.5 ms, a cold start at most 1.1x. For example, both ways in turn:
//
//	go run ./bench/spawnbench -quick -spread -n 50 -respawns 60 -rounds 6 -idle 1s
//	go run ./bench/spawnbench -quick -spread -n 50 -respawns 60 -rounds 6 -idle 1s -cgroup off
//
// Every worker is stopped and every temporary file removed before it exits,
// on errors and on SIGINT too.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

const (
	workerPkg     = "github.com/ringmaster-dev/ringmaster/bench/benchworker"
	httpWorkerPkg = "github.com/ringmaster-dev/ringmaster/examples/httpworker"
)

type options struct {
	n        int
	respawns int
	rounds   int
	idle     time.Duration
	cgroup   cgroupOpts
	quick    bool // cold start, respawn and idle only
	spread   bool // respawns measured in every round, not the last alone
}

// result is one launcher's figures from one round; respawn from the last
// round (or, with -spread, from each), idle from the last.
type result struct {
	cold     time.Duration // start → the n-th READY
	launched time.Duration // floor: last fork returned; Ringmaster: Started closed
	selfCPU  time.Duration // this process's CPU time from start to the n-th READY
	kidCPU   time.Duration // CPU time of every worker of the round, by the average worker
	respawn  []time.Duration
	idle     idle
	baseRSS  int // kB of VmRSS just before arbiter.New (Ringmaster only)
}

func main() {
	var o options
	flag.IntVar(&o.n, "n", 100, "number of workers")
	flag.IntVar(&o.respawns, "respawns", 50, "number of SIGKILL → replacement ready measurements")
	flag.IntVar(&o.rounds, "rounds", 3, "cold starts of each launcher, alternating")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "how long to measure the idle cost")
	flag.StringVar(&o.cgroup.mode, "cgroup", "", "the watcher's cgroup key (auto, worker, off); unset: the default, auto")
	flag.StringVar(&o.cgroup.memoryMax, "cgroup-memory", "", "the watcher's cgroup.memory_max (512M); unset: none")
	flag.BoolVar(&o.quick, "quick", false, "measure cold start, respawn and idle only, not incr and restart")
	flag.BoolVar(&o.spread, "spread", false, "measure the respawns over every round, floor and Ringmaster alternating, not in the last round alone")
	flag.Parse()
	if flag.NArg() != 0 || o.n < 1 || o.respawns < 0 || o.rounds < 1 || o.idle <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "spawnbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	dir, err := os.MkdirTemp("", "spawnbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "benchworker")
	// Before any Arbiter runs: it would reap the go command's children.
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, workerPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build %s: %w", workerPkg, err)
	}
	httpBin := filepath.Join(dir, "httpworker")
	build = exec.CommandContext(ctx, "go", "build", "-o", httpBin, httpWorkerPkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build %s: %w", httpWorkerPkg, err)
	}

	fmt.Printf("spawnbench: %d workers, %d rounds, %d respawns, idle %v; %s; GOMAXPROCS %d, %d CPUs\n",
		o.n, o.rounds, o.respawns, o.idle, o.cgroup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	var fl, rm []result
	for i := range o.rounds {
		last := i == o.rounds-1
		// With -spread, a machine whose load changes during the run
		// weighs on the respawns of both launchers alike.
		k := 0
		switch {
		case o.spread:
			k = o.respawns*(i+1)/o.rounds - o.respawns*i/o.rounds
		case last:
			k = o.respawns
		}
		f, err := childCPU(o, func() (result, error) { return floorPhase(ctx, dir, bin, o, k, last) })
		if err != nil {
			return fmt.Errorf("floor round %d: %w", i+1, err)
		}
		fl = append(fl, f)
		r, err := childCPU(o, func() (result, error) { return ringPhase(ctx, dir, bin, o, k, last) })
		if err != nil {
			return fmt.Errorf("ringmaster round %d: %w", i+1, err)
		}
		rm = append(rm, r)
		fmt.Printf("round %d: cold start floor %s, ringmaster %s (Started after %s)\n",
			i+1, ms(f.cold), ms(r.cold), ms(r.launched))
	}
	report(os.Stdout, o, fl, rm)
	if o.quick {
		return nil
	}
	if err := incrRounds(ctx, dir, bin, o.rounds, o.cgroup); err != nil {
		return err
	}
	return restartRounds(ctx, dir, httpBin, o.rounds)
}

// floorPhase runs the bare launcher: a cold start, k respawns and, with
// idle, the idle measurement. Every worker is gone when it returns.
func floorPhase(ctx context.Context, dir, bin string, o options, k int, idle bool) (res result, err error) {
	nt, err := newNotifier(filepath.Join(dir, "floor.sock"))
	if err != nil {
		return res, err
	}
	defer nt.Close()
	f, err := newFloor(bin, []string{"BENCH_NOTIFY=" + nt.path, "PATH=" + os.Getenv("PATH")})
	if err != nil {
		return res, err
	}
	defer f.Close()

	cpu0 := selfCPU()
	t0 := time.Now()
	if err := f.Start(o.n); err != nil {
		return res, err
	}
	res.launched = time.Since(t0)
	last, err := nt.waitN(ctx, o.n, 6*readyTimeout)
	if err != nil {
		return res, err
	}
	res.cold = last.Sub(t0)
	res.selfCPU = selfCPU() - cpu0
	if k == 0 && !idle {
		return res, nil
	}
	if err := checkServes(ctx, f.Addr()); err != nil {
		return res, err
	}
	if res.respawn, err = respawns(ctx, nt, pool{err: f.Err}, o.n, k); err != nil {
		return res, err
	}
	if !idle {
		return res, nil
	}
	if err := pause(ctx, time.Second); err != nil {
		return res, err
	}
	res.idle, err = measureIdle(ctx, o.idle)
	return res, err
}

// ringPhase is floorPhase for Ringmaster. The arbiter has shut down (every
// worker reaped, Run returned) when it returns.
func ringPhase(ctx context.Context, dir, bin string, o options, k int, idle bool) (res result, err error) {
	nt, err := newNotifier(filepath.Join(dir, "ring.sock"))
	if err != nil {
		return res, err
	}
	defer nt.Close()
	ini, err := writeConfig(dir, bin, nt.path, o.n, o.cgroup)
	if err != nil {
		return res, err
	}
	defer os.Remove(ini)

	st, err := procStatus()
	if err != nil {
		return res, err
	}
	res.baseRSS = st["VmRSS"]
	r, err := newRing(ini)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("arbiter run: %w", cerr)
		}
	}()

	cpu0 := selfCPU()
	t0 := time.Now()
	r.Run()
	last, err := nt.waitN(ctx, o.n, 6*readyTimeout)
	if err != nil {
		return res, err
	}
	res.cold = last.Sub(t0)
	res.selfCPU = selfCPU() - cpu0
	if s := r.Started(); !s.IsZero() {
		res.launched = s.Sub(t0)
	}
	if k == 0 && !idle {
		return res, nil
	}
	if err := checkServes(ctx, r.Addr()); err != nil {
		return res, err
	}
	p := pool{live: r.live, err: func() error { return nil }}
	if res.respawn, err = respawns(ctx, nt, p, o.n, k); err != nil {
		return res, err
	}
	if !idle {
		return res, nil
	}
	if err := pause(ctx, time.Second); err != nil {
		return res, err
	}
	res.idle, err = measureIdle(ctx, o.idle)
	return res, err
}

// childCPU runs one phase and adds to its result the CPU time its workers
// used, on average per worker started: the kernel adds a child's times to
// RUSAGE_CHILDREN when it is reaped, and a phase reaps all of its own.
func childCPU(o options, phase func() (result, error)) (result, error) {
	var r0, r1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &r0)
	res, err := phase()
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &r1)
	started := o.n + len(res.respawn)
	res.kidCPU = (tv(r1.Utime) - tv(r0.Utime) + tv(r1.Stime) - tv(r0.Stime)) / time.Duration(started)
	return res, err
}
