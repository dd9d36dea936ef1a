package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

// answer is one request served: when the answer came and who gave it.
type answer struct {
	at  time.Time
	pid int
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
				pid, err := ask(network, addr)
				l.mu.Lock()
				if err != nil {
					l.failed.Add(1)
					if l.err == nil {
						l.err = err
					}
				} else {
					l.answers = append(l.answers, answer{time.Now(), pid})
				}
				l.mu.Unlock()
			}
		})
	}
	return l
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

// ask sends one request to a serial worker and returns its pid.
func ask(network, addr string) (int, error) {
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, "x\n"); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "pid %d", &pid); err != nil {
		return 0, fmt.Errorf("answer %q: %w", b, err)
	}
	return pid, nil
}

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

// stepResult is one pool's response to the step.
type stepResult struct {
	firstExtra, allServing, drained time.Duration
	served, failed                  int
}

func (b *bench) step() error {
	n := b.o.clients
	auto := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = 1\nautoscale.min = 1\nautoscale.max = %d\nautoscale.idle = 30", n))
	fixed := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = %d", n))
	fmt.Printf("step: %d clients at once for %s; each request takes 100 ms of one worker\n", n, b.o.step)
	fmt.Printf("%-6s %-28s %14s %14s %14s %10s %7s\n", "round", "pool", "first extra", "all serving", "queue drained", "served", "failed")
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
		fmt.Printf("%-6d %-28s %14s %14s %14s %10d %7d\n", r+1, fmt.Sprintf("autoscaled 1..%d", n), ms(ra.firstExtra), ms(ra.allServing), ms(ra.drained), ra.served, ra.failed)
		fmt.Printf("%-6d %-28s %14s %14s %14s %10d %7d\n", r+1, fmt.Sprintf("fixed %d", n), "-", ms(rf.allServing), ms(rf.drained), rf.served, rf.failed)
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
		if !initial[a.pid] && res.firstExtra == 0 {
			res.firstExtra = a.at.Sub(t0)
		}
		seen[a.pid] = true
		if len(seen) == b.o.clients && res.allServing == 0 {
			res.allServing = a.at.Sub(t0)
		}
	}
	l.mu.Unlock()
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
// fixed one and compares the worker-seconds they used.
func (b *bench) cycles() error {
	n := b.o.clients
	auto := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = 1\nautoscale.min = 1\nautoscale.max = %d\nautoscale.idle = %g\nautoscale.down_interval = %g",
		n, b.o.scaleIdle.Seconds(), b.o.downIn.Seconds()))
	fixed := fmt.Sprintf(stepINI, fmt.Sprintf("numprocesses = %d", n))
	fmt.Printf("cycles: %d × (%s busy with %d clients, %s idle); autoscale.idle %s, down_interval %s\n",
		b.o.cycles, b.o.busy, n, b.o.idle, b.o.scaleIdle, b.o.downIn)
	fmt.Printf("%-28s %16s %10s %7s %12s\n", "pool", "worker-seconds", "served", "failed", "workers")
	var ws [2]float64
	for i, c := range []struct {
		name, ini string
		start     int
	}{{fmt.Sprintf("autoscaled 1..%d", n), auto, 1}, {fmt.Sprintf("fixed %d", n), fixed, n}} {
		p, err := b.start(c.ini, c.start)
		if err != nil {
			return err
		}
		var integral float64
		lo, hi := 1<<30, 0
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
					lo, hi = min(lo, k), max(hi, k)
					integral += float64(k) * now.Sub(last).Seconds()
					last = now
				}
			}
		})
		served, failed := 0, 0
		for range b.o.cycles {
			l := startLoad("tcp", p.addr, n)
			time.Sleep(b.o.busy)
			l.end()
			served += len(l.answers)
			failed += int(l.failed.Load())
			time.Sleep(b.o.idle)
		}
		close(stop)
		wg.Wait()
		p.stop()
		ws[i] = integral
		fmt.Printf("%-28s %16.1f %10d %7d %12s\n", c.name, integral, served, failed, fmt.Sprintf("%d..%d", lo, hi))
	}
	fmt.Printf("worker-seconds, autoscaled / fixed: %.1f%%\n\n", 100*ws[0]/ws[1])
	return nil
}
