// Command chaos runs the real arbiter under random abuse for minutes and
// checks that it keeps its promises. It is a benchmark command, not a
// test: it is never run by go test or CI.
//
// It builds cmd/arbiter (or runs -arbiter), examples/httpworker and
// internal/testproc/testworker into a temporary directory, writes a
// configuration of -watchers watchers cycling through five kinds (web:
// the HTTP example worker with ready = notify; sleep; crashy: workers that
// exit on their own every second or so; stubborn: workers that ignore
// SIGTERM and have a grandchild; notify: testworker serving HTTP with
// ready = notify), the HTTP ones sharing one socket, and starts the
// arbiter with it. Then, in rounds of -round, these run at once through
// the control socket (control.Client), each drawing from its own stream
// of the -seed:
//
//   - one actor per watcher: incr and decr (1 or 2, within 1..6), restart,
//     reload, and stop then start (checking that stop --waiting left no
//     worker alive), all with waiting; and overlapping pairs, the first
//     not waiting: restart then stop, incr then decr, reload then incr;
//     a pause of 0.3-2.5 s between them (all pauses are divided by -pace);
//   - a killer: SIGKILL of a random worker every 0.15-0.9 s;
//   - a reloader: every 2-6 s, rewrites the file with one or two watchers
//     changed (numprocesses always, and half the time CHAOS_GEN in its
//     [env:] or its graceful_timeout) and has the arbiter re-read it with
//     reloadconfig or, three times in ten, with SIGHUP;
//   - an observer: a read-only command (stats, dstats, status, list,
//     options...) every 0.1-0.5 s;
//   - -load HTTP clients sending requests to the shared socket.
//
// Between rounds comes a quiet point: the actors finish what they were
// doing, then chaos waits for every watcher's numprocesses and live
// workers to match what the commands so far should have left (the model),
// brings every watcher back to its base size, waits again, and samples
// the arbiter's fds, threads and RSS.
//
// The invariants, each reported as it breaks (INVARIANT BROKEN, with the
// time since the start), and at the end:
//
//   - every command is answered within -bound, and successfully (every
//     command sent is valid); a SIGHUP reload is logged as done within
//     -bound;
//   - incr and decr answer the numprocesses they should;
//   - at every quiet point the worker counts converge to the model within
//     60 s, with every watcher active;
//   - the arbiter's fds, threads and RSS at the last quiet point are not
//     beyond the first's by more than a tolerance (+8 fds, +8 threads, RSS
//     +50% +16 MiB);
//   - at every quiet point, every process running one of the run's
//     programs is a worker the arbiter lists, or a child of one: a dead
//     worker's grandchildren go with it;
//   - no child of the arbiter stays a zombie for more than 3 s;
//   - the arbiter runs until it is told to stop; on SIGTERM it exits 0
//     within the longest graceful_timeout + 10 s, leaving no process of
//     the run's programs behind.
//
// Failed HTTP requests are counted, not judged: a SIGKILLed worker drops
// the connections it held. Those failed during quiet points would deserve
// a look.
//
// Run it from inside the module:
//
//	go run ./bench/chaos                      # 3 minutes, a random seed
//	go run ./bench/chaos -short               # a quick look: 20 s of chaos, about a minute in all
//	go run ./bench/chaos -seed 42 -watchers 8 # the same draws as an earlier run
//
// The exit status is 0 when every invariant held, 1 when one broke, 2 on
// a usage error. On any exit, Ctrl-C included, the arbiter is stopped and
// every process still running one of the run's programs is killed. The
// seed is printed first; the same seed gives each actor the same sequence
// of draws, but the actors' interleaving, and so the run, still depends on
// timing.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

type options struct {
	duration, round, bound time.Duration
	seed                   int64
	pace                   float64
	watchers, load         int
	arbiter                string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 3*time.Minute, "time of chaos in all (quiet points come on top)")
	flag.DurationVar(&o.round, "round", 20*time.Second, "chaos between two quiet points, at most (every round has the same length, and there are at least 3)")
	flag.DurationVar(&o.bound, "bound", 30*time.Second, "longest a command may take to be answered")
	flag.Int64Var(&o.seed, "seed", 0, "seed of the random draws (default: from the clock)")
	flag.IntVar(&o.watchers, "watchers", len(kinds), "number of watchers")
	flag.Float64Var(&o.pace, "pace", 1, "divides the actors' pauses between operations: 2 is twice as many operations")
	flag.IntVar(&o.load, "load", 2, "HTTP clients sending requests throughout")
	flag.StringVar(&o.arbiter, "arbiter", "", "arbiter binary to run (default: build ./cmd/arbiter)")
	short := flag.Bool("short", false, "a quick look: -duration 20s unless -duration is given")
	flag.Parse()
	if *short && !isSet("duration") {
		o.duration = 20 * time.Second
	}
	if flag.NArg() != 0 || o.duration <= 0 || o.round <= 0 || o.bound <= 0 || o.watchers < 1 || o.load < 0 || o.pace <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if o.seed == 0 {
		o.seed = time.Now().UnixNano()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	fails, err := runChaos(ctx, o)
	stop()
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(os.Stderr, "chaos: %v\n", err)
		os.Exit(1)
	}
	if len(fails) > 0 {
		fmt.Printf("\nFAIL: %d invariant(s) broke:\n  %s\nreproduce with: go run ./bench/chaos -seed %d -duration %v -round %v -watchers %d -load %d -pace %g\n",
			len(fails), strings.Join(fails, "\n  "), o.seed, o.duration, o.round, o.watchers, o.load, o.pace)
		os.Exit(1)
	}
	fmt.Println("\nPASS: every invariant held")
}

// isSet reports whether the flag name was given on the command line.
func isSet(name string) bool {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// runChaos runs the whole thing and returns the broken invariants; an
// error means the run itself could not go on.
func runChaos(ctx context.Context, o options) ([]string, error) {
	dir, err := os.MkdirTemp("", "chaos-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Whatever happens below, nothing the run started outlives it.
	defer killLeftovers(dir)
	fmt.Printf("chaos: seed %d, %d watchers, %v of chaos in rounds of at most %v, pace %g, bound %v, %d HTTP clients; GOMAXPROCS %d, %d CPUs\n",
		o.seed, o.watchers, o.duration, o.round, o.pace, o.bound, o.load, runtime.GOMAXPROCS(0), runtime.NumCPU())
	bins, err := build(ctx, dir, o.arbiter)
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	files := newRunFiles(dir, bins, port)
	specs := newSpecs(o.watchers)
	if err := writeConfig(files, specs); err != nil {
		return nil, err
	}
	// The arbiter's whole log and a trace of every operation go to a
	// directory of their own, kept when the run fails.
	logDir, err := os.MkdirTemp("", "chaos-logs-")
	if err != nil {
		return nil, err
	}
	keep := true
	defer func() {
		if keep {
			fmt.Printf("the arbiter's log and the trace of the run are in %s\n", logDir)
		} else {
			os.RemoveAll(logDir)
		}
	}()
	arbLog, err := os.Create(filepath.Join(logDir, "arbiter.log"))
	if err != nil {
		return nil, err
	}
	defer arbLog.Close()
	traceFile, err := os.Create(filepath.Join(logDir, "trace.log"))
	if err != nil {
		return nil, err
	}
	defer traceFile.Close()
	var traceMu sync.Mutex
	t0 := time.Now()
	trace := func(format string, args ...any) {
		traceMu.Lock()
		defer traceMu.Unlock()
		fmt.Fprintf(traceFile, "%s [%7.3fs] %s\n", time.Now().UTC().Format("15:04:05.000"), time.Since(t0).Seconds(), fmt.Sprintf(format, args...))
	}
	a, err := startArbiter(ctx, bins.arbiter, files.ini, arbLog)
	if err != nil {
		return nil, err
	}
	defer a.Kill()
	fmt.Printf("arbiter pid %d, control ipc://%s, HTTP on 127.0.0.1:%d, config %s\n", a.Pid(), files.control, port, files.ini)

	r := &run{o: o, files: files, a: a, fails: &failures{t0: t0, trace: trace}, lat: newLatencies(), specs: specs,
		target: map[string]int{}, pending: map[string]bool{}, trace: trace}
	for _, s := range specs {
		r.target[s.name] = s.n
	}
	for i := range len(specs) + 4 {
		r.rngs = append(r.rngs, r.rng(uint64(i)))
	}
	// One client per actor, as several circusctl would be.
	clients := make([]*control.Client, len(specs)+4)
	for i := range clients {
		if clients[i], err = control.Dial("ipc://"+files.control, 5*time.Second); err != nil {
			return nil, err
		}
		defer clients[i].Close()
	}
	ctl := clients[0] // the quiet points'; 1 is the killer's, 2 the reloader's, 3 the observer's, 4... the watcher actors'

	// The arbiter must live until it is told to stop: its death ends
	// the run early.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stopping sync.Once
	shutdown := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		select {
		case <-a.done:
			r.fails.add("the arbiter exited unasked (%v); its log ends:\n%s\n(the whole log is kept)", a.err, a.logTail(10))
			cancel()
		case <-shutdown:
		}
	})
	var z zombies
	bg.Go(func() { z.watch(runCtx, r) })
	var l load
	for range o.load {
		bg.Go(func() { l.run(runCtx, fmt.Sprintf("http://127.0.0.1:%d/", port)) })
	}
	endBackground := func() {
		stopping.Do(func() { close(shutdown) })
		cancel()
		bg.Wait()
	}
	defer endBackground()

	var points []quietPoint
	quiet := func(name string) error {
		l.quiet.Store(true)
		defer l.quiet.Store(false)
		q := quietPoint{name: name}
		if q.converged, err = r.converge(runCtx, ctl, name); err != nil {
			return err
		}
		if err := r.strays(runCtx, ctl, name); err != nil {
			return err
		}
		t0 := time.Now()
		r.normalize(runCtx, ctl)
		if _, err := r.converge(runCtx, ctl, name+", at base sizes"); err != nil {
			return err
		}
		q.normalized = time.Since(t0)
		// Let what the resizing started (drains, reaps, the runtime's
		// scavenger) settle before sampling.
		if err := pause(runCtx, time.Second); err != nil {
			return err
		}
		if q.res, err = sample(a.Pid()); err != nil {
			return err
		}
		q.res.at = time.Since(r.fails.t0)
		for _, s := range specs {
			q.res.workers += r.getTarget(s.name)
		}
		points = append(points, q)
		trace("quiet point %s: converged in %v, at base sizes in %v, %+v", name, q.converged, q.normalized, q.res)
		fmt.Printf("%-26s converged in %-8v back to base sizes in %-8v fds %d, threads %d, RSS %d kB\n",
			name+":", round(q.converged), round(q.normalized), q.res.fds, q.res.threads, q.res.rssKB)
		return nil
	}
	// A quiet point that cannot finish (a command unanswered, the
	// arbiter gone: reported as they happened) ends the chaos; the end's
	// checks and the figures still come.
	quietOrStop := func(name string) bool {
		err := quiet(name)
		if err != nil && ctx.Err() == nil {
			r.fails.add("%s: the quiet point could not finish: %v", name, err)
		}
		return err == nil
	}
	// Rounds of equal length, at least 3, so that the first point after
	// chaos (the early one) and the last (the late one) are apart.
	rounds := max(3, int((o.duration+o.round-1)/o.round))
	for i := 0; i <= rounds && runCtx.Err() == nil; i++ {
		if i > 0 {
			r.chaos(runCtx, clients, o.duration*time.Duration(i)/time.Duration(rounds)-o.duration*time.Duration(i-1)/time.Duration(rounds))
		}
		name := "start"
		if i > 0 {
			name = fmt.Sprintf("after round %d", i)
		}
		if runCtx.Err() != nil || !quietOrStop(name) {
			break
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(points) >= 3 {
		// The start point is before any chaos; the first round warms
		// up what the arbiter keeps (buffers, the runtime's heap).
		r.growth(points[1].res, points[len(points)-1].res)
	}

	// The end: SIGTERM, and the arbiter must be gone in time with every
	// worker.
	stopping.Do(func() { close(shutdown) })
	bound := maxGraceful(specs) + 10*time.Second
	died := a.Exited() // before SIGTERM: reported already
	took, ok := a.Terminate(bound)
	endBackground()
	var left []string
	switch {
	case died:
	case !ok:
		r.fails.add("SIGTERM: the arbiter still runs after %v; its log ends:\n%s", bound, a.logTail(10))
	case a.err != nil:
		r.fails.add("SIGTERM: the arbiter exited with %v after %v", a.err, round(took))
	}
	if ok {
		// Its workers are reaped before the arbiter exits; a grace
		// second for anything that was dying anyway.
		if left = leftovers(dir); len(left) > 0 {
			_ = pause(ctx, time.Second)
			if left = leftovers(dir); len(left) > 0 {
				r.fails.add("after the arbiter exited, %d process(es) of the run still run: %s", len(left), strings.Join(left, "; "))
			}
		}
	}
	report(r, o, points, &z, &l, took, ok && !died)
	fails := r.fails.all()
	keep = len(fails) > 0
	return fails, nil
}

// chaos runs the actors for d, then waits for the operations in flight.
func (r *run) chaos(ctx context.Context, clients []*control.Client, d time.Duration) {
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	// Each actor keeps its generator from round to round: the next
	// round continues its stream.
	wg.Go(func() { r.killer(rctx, clients[1], r.rngs[1]) })
	wg.Go(func() { r.reloader(rctx, clients[2], r.rngs[2]) })
	wg.Go(func() { r.observer(rctx, clients[3], r.rngs[3]) })
	for i, s := range r.specs {
		wg.Go(func() { r.watcherActor(rctx, clients[4+i], s, r.rngs[4+i]) })
	}
	wg.Wait()
}
