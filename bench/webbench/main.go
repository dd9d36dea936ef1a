// Command webbench measures the web console under load, for the target of
// its issue: "With 20 watchers of 10 workers and 20 browser clients
// connected, an event reaches every client in under 100 ms, and the
// arbiter's own CPU stays under 3% of a core."
//
// It builds cmd/arbiter into a temporary directory (or runs -arbiter),
// starts it on a configuration of -watchers watchers of -workers workers
// each (`sleep 100000`), with the console on (httpd = true) and every
// endpoint on a free port, and waits until every watcher has started.
// Then it runs two phases of the same load, one worker killed every
// -events-every, the watchers taken in turn (each kill brings a kill, a
// reap and a spawn event):
//
//   - no pages: the kills go through the ZeroMQ control endpoint (list,
//     then kill); no WebSocket is open. This is the baseline: the arbiter
//     with its event stream and an idle console.
//   - -clients pages: that many WebSocket clients connect to /ws, each
//     reading every message on its own goroutine as a browser tab would;
//     the first also sends the kills, as the page's kill button does. With
//     a page open the console also sends a stats sample every 2 s.
//
// Each phase waits -warmup after its load started, then measures for
// -duration:
//
//   - arbiter CPU: utime+stime of the arbiter process (all its threads, no
//     children) from /proc/PID/stat at both ends of the window, over the
//     wall time, in % of one core; and its VmRSS at the end. The
//     difference between the two phases is what the open pages cost.
//   - event latency: for every event message whose event happened in the
//     window, and for every page, the time it was read minus the event's
//     own "time" (the arbiter's clock, the same machine's). "per page" is
//     over every (event, page) pair; "to every page" takes, per event, the
//     last page to get it: that is the figure. An event some page
//     never got counts as missing.
//   - kill reply: from the kill written to its reply read, on the driving
//     page; and from the kill to its reap and to the watcher's next spawn
//     event as that page saw them.
//
// The report also gives webbench's own CPU over the window (the pages
// share the machine with the arbiter), the messages and bytes each page
// got, the arbiter's own cpu figure from the stats messages, and the
// warnings the arbiter logged. Targets are printed beside the figures with
// PASS or MISS; missing one does not change the exit status, which is 1
// only when the benchmark could not run.
//
// Run it from inside the module (it builds the arbiter with the go
// command):
//
//	go run ./bench/webbench -watchers 20 -workers 10 -clients 20 -duration 30s -events-every 1s
//
// The arbiter is stopped with SIGTERM (it stops its workers) and the
// temporary directory removed before webbench exits, on errors and on
// SIGINT too.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

type options struct {
	watchers, workers, clients int
	duration, warmup, every    time.Duration
	arbiter                    string
}

func main() {
	var o options
	flag.IntVar(&o.watchers, "watchers", 20, "number of watchers")
	flag.IntVar(&o.workers, "workers", 10, "workers per watcher (numprocesses)")
	flag.IntVar(&o.clients, "clients", 20, "WebSocket clients in the second phase")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "measurement window of each phase")
	flag.DurationVar(&o.warmup, "warmup", 5*time.Second, "load before each window")
	flag.DurationVar(&o.every, "events-every", time.Second, "time between kills")
	flag.StringVar(&o.arbiter, "arbiter", "", "arbiter binary to run (default: build ./cmd/arbiter)")
	flag.Parse()
	if flag.NArg() != 0 || o.watchers < 1 || o.workers < 1 || o.clients < 1 || o.duration <= 0 || o.warmup < 0 || o.every <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "webbench: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) (err error) {
	dir, err := os.MkdirTemp("", "webbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.arbiter
	if bin == "" {
		if bin, err = buildArbiter(ctx, dir); err != nil {
			return err
		}
	}
	ini, err := writeConfig(dir, o.watchers, o.workers)
	if err != nil {
		return err
	}
	a, err := startArbiter(ctx, bin, ini)
	if err != nil {
		return err
	}
	defer func() {
		if serr := a.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	fmt.Printf("webbench: %d watchers × %d workers, %d clients, a kill every %v, %v windows after %v of warm-up; GOMAXPROCS %d, %d CPUs\n",
		o.watchers, o.workers, o.clients, o.every, o.duration, o.warmup, runtime.GOMAXPROCS(0), runtime.NumCPU())
	fmt.Printf("arbiter pid %d, console %s, control %s\n", a.Pid(), a.consoleURL, a.endpoint)

	base, err := basePhase(ctx, a, o)
	if err != nil {
		return fmt.Errorf("phase without pages: %w", err)
	}
	// Let the last replacements start before the next phase.
	if err := pause(ctx, 2*time.Second); err != nil {
		return err
	}
	pages, err := pagePhase(ctx, a, o)
	if err != nil {
		return fmt.Errorf("phase with %d pages: %w", o.clients, err)
	}
	warnings, first := a.Warnings()
	report(os.Stdout, o, base, pages, warnings, first)
	return nil
}

// phase is what one phase measured.
type phase struct {
	kills, skipped int // in the window
	window         time.Duration
	cpu            float64 // the arbiter's, % of one core
	selfCPU        float64 // webbench's, % of one core
	rssKB          int     // the arbiter's VmRSS at the end
	load           string  // the machine's 1-minute load average at the end
	messages       int     // read by all pages in the window
	bytes          int64
	replies        []time.Duration // kill sent → its reply, the whole phase
	t0, t1         time.Time       // the window
	pages          []*page         // with pages: all of them, closed
	drv            *driver
}

// basePhase kills workers through the control endpoint with no page open.
func basePhase(ctx context.Context, a *arbiterProc, o options) (phase, error) {
	c, err := control.Dial(a.endpoint, 5*time.Second)
	if err != nil {
		return phase{}, err
	}
	defer c.Close()
	k := &zmqKiller{c: c, killed: map[int]bool{}}
	loop := startKills(ctx, k, watcherNames(o.watchers), o.every)
	ph, err := measure(ctx, a, o, loop, nil)
	err = errors.Join(err, loop.stop())
	ph.replies = k.replies
	return ph, err
}

// pagePhase connects the pages, kills workers through the first, and
// waits for every page to have every event before closing them.
func pagePhase(ctx context.Context, a *arbiterProc, o options) (ph phase, err error) {
	drv := newDriver()
	var pages []*page
	defer func() {
		for _, p := range pages {
			p.Close()
		}
	}()
	for i := range o.clients {
		var d *driver
		if i == 0 {
			d = drv
		}
		p, err := dial(ctx, a.consoleURL, d)
		if err != nil {
			return ph, err
		}
		pages = append(pages, p)
	}
	for i, p := range pages {
		select {
		case <-p.ready:
		case <-time.After(10 * time.Second):
			return ph, fmt.Errorf("page %d: no snapshot within 10s", i+1)
		case <-ctx.Done():
			return ph, ctx.Err()
		}
		if err := p.Err(); err != nil {
			return ph, fmt.Errorf("page %d: %w", i+1, err)
		}
	}
	loop := startKills(ctx, pageKiller{pages[0]}, watcherNames(o.watchers), o.every)
	ph, err = measure(ctx, a, o, loop, pages)
	ph.pages, ph.drv = pages, drv
	if err = errors.Join(err, loop.stop()); err != nil {
		return ph, err
	}
	// The events of the last kill, and any straggler, before the pages
	// close: every page should get what any page got.
	if err := pause(ctx, time.Second); err != nil {
		return ph, err
	}
	var last uint64
	for _, p := range pages {
		last = max(last, p.maxEvent())
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pages {
		for p.maxEvent() < last && time.Now().Before(deadline) && p.Err() == nil {
			if err := pause(ctx, 10*time.Millisecond); err != nil {
				return ph, err
			}
		}
	}
	drv.mu.Lock()
	ph.replies = slices.Clone(drv.replies)
	drv.mu.Unlock()
	return ph, nil
}

// measure waits the warm-up, then reads the arbiter's CPU and this
// process's across the window, and counts the kills made and what the
// pages read in it.
func measure(ctx context.Context, a *arbiterProc, o options, loop *killLoop, pages []*page) (phase, error) {
	var ph phase
	if err := pause(ctx, o.warmup); err != nil {
		return ph, err
	}
	u0, err := readUsage(a.Pid())
	if err != nil {
		return ph, err
	}
	self0 := selfCPU()
	m0, b0 := received(pages)
	k0, s0 := loop.counts()
	if err := pause(ctx, o.duration); err != nil {
		return ph, err
	}
	u1, err := readUsage(a.Pid())
	if err != nil {
		return ph, err
	}
	self := selfCPU() - self0
	m1, b1 := received(pages)
	k1, s1 := loop.counts()
	ph.messages, ph.bytes = m1-m0, b1-b0
	ph.kills, ph.skipped = k1-k0, s1-s0
	ph.t0, ph.t1 = u0.at, u1.at
	ph.window = u1.at.Sub(u0.at)
	ph.cpu = cpuPercent(u0, u1)
	ph.selfCPU = self.Seconds() / ph.window.Seconds() * 100
	if ph.rssKB, err = readRSS(a.Pid()); err != nil {
		return ph, err
	}
	ph.load = loadAverage()
	return ph, nil
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
