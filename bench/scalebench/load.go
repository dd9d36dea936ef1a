package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// answer is one request served: when the answer came, who gave it, and
// how long it took from the connect.
type answer struct {
	at   time.Time
	pid  int
	took time.Duration
}

// load is -clients closed loops of requests to one address.
type load struct {
	stop   chan struct{}
	wg     sync.WaitGroup
	failed atomic.Int64

	mu      sync.Mutex
	answers []answer
	err     error // the first failure
}

func startLoad(network, addr string, clients int) *load {
	l := &load{stop: make(chan struct{})}
	for range clients {
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				l.one(network, addr)
			}
		})
	}
	return l
}

// startOpen sends requests at random moments, rate a second on average
// (Poisson arrivals: what many independent users make), whether or not
// earlier ones have been answered.
func startOpen(network, addr string, rate float64) *load {
	l := &load{stop: make(chan struct{})}
	l.wg.Go(func() {
		next := time.Now()
		for {
			next = next.Add(time.Duration(rand.ExpFloat64() / rate * float64(time.Second)))
			select {
			case <-l.stop:
				return
			case <-time.After(time.Until(next)):
			}
			l.wg.Go(func() { l.one(network, addr) })
		}
	})
	return l
}

// one sends one request and records how it went.
func (l *load) one(network, addr string) {
	t0 := time.Now()
	pid, err := testproc.AskSerial(network, addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed.Add(1)
		if l.err == nil {
			l.err = err
		}
		return
	}
	l.answers = append(l.answers, answer{time.Now(), pid, time.Since(t0)})
}

// latency returns the median and 99th percentile of the answers' times.
func (l *load) latency() (p50, p99 time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.answers) == 0 {
		return 0, 0
	}
	d := make([]time.Duration, len(l.answers))
	for i, a := range l.answers {
		d[i] = a.took
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100]
}

// end stops the clients, once their requests in flight are answered.
func (l *load) end() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) served(from, to time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, a := range l.answers {
		if !a.at.Before(from) && a.at.Before(to) {
			n++
		}
	}
	return n
}

// sampleRound is the arbiter's time between samples of the queues.
const sampleRound = 100 * time.Millisecond

// rand100 is a moment of the sampler's round, at random.
func rand100() time.Duration { return rand.N(sampleRound) }

// work is what a request takes of a worker (testworker serial's DURATION
// below).
const work = 100 * time.Millisecond

const stepINI = `
[socket:web]
host = 127.0.0.1
port = 0
backlog = 256

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 100ms
graceful_timeout = 5
close_child_stdout = true
%s
`

// stepResult is one pool's response to the step: when it decided to
// grow, when the first extra worker was spawned (ready: the watcher's
// ready is spawn) and when it accepted its first connection (its first
// answer less the 100 ms of work), when the last of the workers did, and
// when the queue had drained.
type stepResult struct {
	decided, firstReady, firstServing, allServing, drained time.Duration
	served, failed                                         int
}

func (b *bench) step() error {
	n := b.o.clients
	auto := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = 1\nautoscale.min = 1\nautoscale.max = %d\nautoscale.idle = 30", n))
	fixed := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = %d", n))
	fmt.Printf("step: %d clients at once for %s; each request takes 100 ms of one worker\n", n, b.o.step)
	fmt.Printf("%-6s %-18s %9s %13s %14s %12s %14s %8s %7s\n", "round", "pool", "decided", "first ready", "first serving", "all serving", "queue drained", "served", "failed")
	var ratios []float64
	for r := range b.o.rounds {
		ra, err := b.stepOnce(auto, 1)
		if err != nil {
			return err
		}
		rf, err := b.stepOnce(fixed, n)
		if err != nil {
			return err
		}
		for _, x := range []struct {
			name string
			r    stepResult
		}{{fmt.Sprintf("autoscaled 1..%d", n), ra}, {fmt.Sprintf("fixed %d", n), rf}} {
			fmt.Printf("%-6d %-18s %9s %13s %14s %12s %14s %8d %7d\n", r+1, x.name, ms(x.r.decided), ms(x.r.firstReady), ms(x.r.firstServing),
				ms(x.r.allServing), ms(x.r.drained), x.r.served, x.r.failed)
		}
		ratios = append(ratios, float64(ra.served)/float64(rf.served))
	}
	slices.Sort(ratios)
	fmt.Printf("throughput, autoscaled / fixed: %s (median %.1f%%; target at least 90%%)\n\n", pcts(ratios), 100*ratios[len(ratios)/2])
	return nil
}

// stepOnce runs one pool starting with start ready workers through the
// step.
func (b *bench) stepOnce(ini string, start int) (stepResult, error) {
	p, err := b.start(ini, start)
	if err != nil {
		return stepResult{}, err
	}
	defer p.stop()
	initial := map[int]bool{}
	st, _ := p.w.Status(context.Background())
	for _, w := range st.Procs {
		initial[w.Pid] = true
	}
	var res stepResult
	// The step comes at any moment of the sampler's 100 ms round, not
	// one tied to the arbiter's start.
	time.Sleep(500*time.Millisecond + rand.N(sampleRound))
	t0 := time.Now()
	l := startLoad("tcp", p.addr, b.o.clients)
	// The queue, every 2 ms until it has drained after its peak.
	sock := p.a.Sockets()[0]
	var r sockets.QueueReader
	peak := 0
	for time.Since(t0) < b.o.step {
		q := r.Read(nil, []*sockets.Socket{sock})[0]
		peak = max(peak, q.Len)
		if peak > 0 && q.Len == 0 {
			res.drained = time.Since(t0)
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	r.Close()
	time.Sleep(time.Until(t0.Add(b.o.step)))
	end := time.Now()
	l.end()
	seen := map[int]bool{}
	l.mu.Lock()
	for _, a := range l.answers {
		if !initial[a.pid] && res.firstServing == 0 {
			res.firstServing = a.at.Sub(t0) - work
		}
		seen[a.pid] = true
		if len(seen) == b.o.clients && res.allServing == 0 {
			res.allServing = a.at.Sub(t0) - work
		}
	}
	l.mu.Unlock()
	if start > 1 {
		res.drained = 0 // a pool that carries the load from the start has no backlog to drain
	}
	if at := p.events.first(pubsub.Scale, t0); !at.IsZero() {
		res.decided = at.Sub(t0)
	}
	if at := p.events.first(pubsub.Spawn, t0); !at.IsZero() {
		res.firstReady = at.Sub(t0)
	}
	res.served = l.served(t0, end)
	res.failed = int(l.failed.Load())
	if l.err != nil {
		fmt.Printf("  (first failure: %v)\n", l.err)
	}
	return res, nil
}

func pcts(v []float64) string {
	s := ""
	for i, x := range v {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%.1f%%", 100*x)
	}
	return s
}

// cycles runs load that comes and goes through an autoscaled pool and a
// fixed one and compares the worker-seconds they used: with open
// arrivals (Poisson, at -utilization of the fixed pool's capacity) and
// with closed loops (-clients, as many as the fixed pool has workers:
// demand exactly at its capacity, the case a queue cannot tell from
// idle, so the autoscaler probes below it now and then).
func (b *bench) cycles() error {
	n := b.o.clients
	auto := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = 1\nautoscale.min = 1\nautoscale.max = %d\nautoscale.idle = %g\nautoscale.down_interval = %g",
		n, b.o.scaleIdle.Seconds(), b.o.downIn.Seconds()))
	fixed := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = %d", n))
	rate := b.o.utilization * float64(n) / work.Seconds()
	fmt.Printf("cycles: %d × (%s busy, %s idle); autoscale.idle %s, down_interval %s\n",
		b.o.cycles, b.o.busy, b.o.idle, b.o.scaleIdle, b.o.downIn)
	fmt.Printf("%-40s %-18s %15s %8s %7s %9s %9s %9s\n", "load", "pool", "worker-seconds", "served", "failed", "p50", "p99", "workers")
	for _, kind := range strings.Split(b.o.arrivals, ",") {
		var name string
		var begin func(addr string) *load
		switch kind {
		case "open":
			name = fmt.Sprintf("open: %.0f/s at random (%.0f%% of %d)", rate, 100*b.o.utilization, n)
			begin = func(addr string) *load { return startOpen("tcp", addr, rate) }
		case "closed":
			name = fmt.Sprintf("closed: %d clients", n)
			begin = func(addr string) *load { return startLoad("tcp", addr, n) }
		default:
			return fmt.Errorf("-arrivals: unknown %q", kind)
		}
		var ws [2]float64
		for i, c := range []struct {
			name, ini string
			start     int
		}{{fmt.Sprintf("autoscaled 1..%d", n), auto, 1}, {fmt.Sprintf("fixed %d", n), fixed, n}} {
			r, err := b.cycle(c.ini, c.start, begin)
			if err != nil {
				return err
			}
			ws[i] = r.workerSeconds
			fmt.Printf("%-40s %-18s %15.1f %8d %7d %9s %9s %9s\n", name, c.name, r.workerSeconds, r.served, r.failed,
				ms(r.p50), ms(r.p99), fmt.Sprintf("%d..%d", r.lo, r.hi))
		}
		fmt.Printf("%-40s worker-seconds, autoscaled / fixed: %.1f%%\n", "", 100*ws[0]/ws[1])
	}
	fmt.Println()
	return nil
}

type cycleResult struct {
	workerSeconds  float64
	served, failed int
	p50, p99       time.Duration
	lo, hi         int
}

// cycle runs one pool through the busy and idle periods, integrating its
// live workers every 20 ms.
func (b *bench) cycle(ini string, start int, begin func(addr string) *load) (cycleResult, error) {
	p, err := b.start(ini, start)
	if err != nil {
		return cycleResult{}, err
	}
	defer p.stop()
	r := cycleResult{lo: 1 << 30}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		last := time.Now()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				k := p.live()
				r.lo, r.hi = min(r.lo, k), max(r.hi, k)
				r.workerSeconds += float64(k) * now.Sub(last).Seconds()
				last = now
			}
		}
	})
	var all []*load
	for range b.o.cycles {
		l := begin(p.addr)
		time.Sleep(b.o.busy)
		l.end()
		all = append(all, l)
		time.Sleep(b.o.idle)
	}
	close(stop)
	wg.Wait()
	merged := &load{}
	for _, l := range all {
		merged.answers = append(merged.answers, l.answers...)
		r.failed += int(l.failed.Load())
	}
	r.served = len(merged.answers)
	r.p50, r.p99 = merged.latency()
	return r, nil
}
