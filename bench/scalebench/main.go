// Command scalebench measures autoscaling from the accept queue against
// its "Speed" targets (issue 19), with the arbiter in this process
// (config.Load, arbiter.New, Arbiter.Run) and testworker's serial role as
// every worker: one request at a time on the inherited socket, 100 ms
// each, the others waiting in the accept queue. Clients are closed loops
// in this process: connect, send a line, read the answer, again.
//
//   - step: a pool of 1 (autoscale.min 1, max 16) meets 16 clients at
//     once, against a fixed pool of 16 (numprocesses 16, no autoscaling)
//     meeting the same. Reported: from the step to the first answer by a
//     worker other than the one that was there (the first extra worker
//     ready and serving; target under 300 ms), to the last of the 16
//     workers serving and to the accept queue empty for good (a pool
//     that carries the load; target under 1 s), and the requests served
//     over the -step window against the fixed pool's (target at least
//     90%).
//   - cycles: load that comes and goes, busy then idle, -cycles times,
//     against the fixed pool of 16; reported: the worker-seconds each
//     used (live workers, polled every 20 ms, integrated), the requests
//     each served and their latency. Two loads: open, requests at random
//     moments (Poisson) at 80% of the fixed pool's capacity, as many
//     independent users make; and closed, 16 clients in loops, demand
//     exactly at that capacity, which a queue cannot tell from idle (the
//     autoscaler then probes below it now and then). The periods
//     are minutes; the default here is 10 s busy, 10 s idle, with
//     autoscale.idle 3 s and down_interval 0.2 s.
//   - zero: a request to a pool that has scaled to zero (autoscale.min 0),
//     over TCP and unix: from its connect to its answer, less the work.
//   - sampling: 100 autoscaled watchers with no workers (min 0), each on
//     a socket of its own, half TCP, half unix, against the same 100
//     without autoscaling: this process's CPU time over -window, the
//     difference being what sampling 100 sockets 10 times a second costs
//     (target under 0.5% of a core).
//
// Run it from inside the module (it builds testworker with the go
// command):
//
//	go run ./bench/scalebench -rounds 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

type options struct {
	phases            string
	rounds            int
	clients           int
	step              time.Duration
	cycles            int
	busy, idle        time.Duration
	scaleIdle, downIn time.Duration
	window            time.Duration
	verbose           bool
	profile           string
	arrivals          string
	utilization       float64
}

func main() {
	var o options
	flag.StringVar(&o.phases, "phase", "step,cycles,zero,sampling", "phases to run, comma-separated")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of the step phase (autoscaled and fixed in turn)")
	flag.IntVar(&o.clients, "clients", 16, "clients at once, and autoscale.max and the fixed pool's size")
	flag.DurationVar(&o.step, "step", 10*time.Second, "how long the step phase's load lasts")
	flag.IntVar(&o.cycles, "cycles", 3, "busy and idle periods in the cycles phase")
	flag.DurationVar(&o.busy, "busy", 10*time.Second, "a busy period of the cycles phase")
	flag.DurationVar(&o.idle, "idle", 10*time.Second, "an idle period of the cycles phase")
	flag.DurationVar(&o.scaleIdle, "autoscale-idle", 3*time.Second, "autoscale.idle in the cycles phase")
	flag.DurationVar(&o.downIn, "down-interval", 200*time.Millisecond, "autoscale.down_interval in the cycles phase")
	flag.DurationVar(&o.window, "window", 10*time.Second, "CPU measuring window of the sampling phase")
	flag.StringVar(&o.arrivals, "arrivals", "open,closed", "loads of the cycles phase: open (Poisson arrivals) and closed (-clients loops)")
	flag.Float64Var(&o.utilization, "utilization", 0.8, "the open load's rate, as a share of the fixed pool's capacity")
	flag.BoolVar(&o.verbose, "v", false, "the arbiter's log on stderr")
	flag.StringVar(&o.profile, "cpuprofile", "", "write a CPU profile of the sampling phase's autoscaled window to `file`")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "scalebench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "scalebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	worker, err := testproc.Build(dir)
	if err != nil {
		return err
	}
	b := &bench{o: o, dir: dir, worker: worker}
	for _, p := range strings.Split(o.phases, ",") {
		var err error
		switch strings.TrimSpace(p) {
		case "step":
			err = b.step()
		case "cycles":
			err = b.cycles()
		case "sampling":
			err = b.sampling()
		case "zero":
			err = b.zero()
		default:
			err = fmt.Errorf("unknown phase %q", p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type bench struct {
	o      options
	dir    string
	worker string
	n      int // arbiters started, for their files
}

// pool is a running arbiter with one watcher, web.
type pool struct {
	a      *arbiter.Arbiter
	w      *arbiter.Watcher
	addr   string
	cancel context.CancelFunc
	done   chan error
	events recorder
}

// recorder keeps the arbiter's spawn and scale events.
type recorder struct {
	mu     sync.Mutex
	events []pubsub.Event
}

func (r *recorder) Publish(ev pubsub.Event) {
	if ev.Kind != pubsub.Spawn && ev.Kind != pubsub.Scale {
		return
	}
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// first is the time of the first event of kind after t, or zero.
func (r *recorder) first(kind pubsub.Kind, t time.Time) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Kind == kind && ev.Time.After(t) {
			return ev.Time
		}
	}
	return time.Time{}
}

// start runs an arbiter on the ini text (WORKER and DIR replaced) and
// waits for watcher web to have want ready workers.
func (b *bench) start(ini string, want int) (*pool, error) {
	b.n++
	dir := filepath.Join(b.dir, fmt.Sprint(b.n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	ini = strings.NewReplacer("WORKER", b.worker, "DIR", dir).Replace(ini)
	path := filepath.Join(dir, "bench.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		return nil, err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	var out io.Writer = io.Discard
	if b.o.verbose {
		out = os.Stderr
	}
	p := &pool{done: make(chan error, 1)}
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.NewTextHandler(out, nil)), Publisher: &p.events,
		Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.a, p.cancel = a, cancel
	go func() { p.done <- a.Run(ctx) }()
	<-a.Started()
	if p.w = a.Watcher("web"); p.w == nil {
		return p, nil // the sampling phase's watchers have other names
	}
	p.addr = a.Sockets()[0].Addr()
	if err := poll(time.Minute, func() bool { return p.ready() == want }); err != nil {
		p.stop()
		return nil, fmt.Errorf("pool of %d not ready: %w", want, err)
	}
	return p, nil
}

func (p *pool) stop() {
	p.cancel()
	<-p.done
}

// ready counts web's ready workers that are not stopping.
func (p *pool) ready() int {
	st, err := p.w.Status(context.Background())
	if err != nil {
		return -1
	}
	n := 0
	for _, w := range st.Procs {
		if w.Ready && !w.Stopping {
			n++
		}
	}
	return n
}

// live counts web's workers, stopping ones included: they hold memory.
func (p *pool) live() int {
	st, err := p.w.Status(context.Background())
	if err != nil {
		return 0
	}
	return len(st.Procs)
}

// poll checks cond every 10 ms until it holds or d has passed.
func poll(d time.Duration, cond func() bool) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return errors.New("timed out")
}

func ms(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
}
