package arbiter

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
)

func scaleCfg(mod func(*config.Autoscale)) config.Autoscale {
	a := config.Autoscale{Min: 1, Max: 16, Idle: 2 * time.Second, DownInterval: 200 * time.Millisecond,
		UpAfter: 100 * time.Millisecond, QueuePerWorker: 1}
	if mod != nil {
		mod(&a)
	}
	return a
}

// Each case feeds the scaler samples 100 ms apart and checks what it
// answers to the last one.
func TestScalerDecisions(t *testing.T) {
	t.Parallel()
	type sample struct {
		q             int
		target, ready int
	}
	tests := []struct {
		name    string
		cfg     config.Autoscale
		samples []sample
		want    int
		reason  string // in the reason; "" for no change
	}{
		{"one sample of a queue waits", scaleCfg(nil), []sample{{5, 1, 1}}, 1, ""},
		{"a queue that stays adds its length", scaleCfg(nil), []sample{{5, 1, 1}, {6, 1, 1}}, 6, "queue 6 for 100ms"},
		{"the least excess over the wait counts", scaleCfg(nil), []sample{{9, 2, 2}, {3, 2, 2}}, 5, "queue 3"},
		{"a short spike adds nothing", scaleCfg(nil), []sample{{5, 1, 1}, {0, 1, 1}, {5, 1, 1}}, 1, ""},
		{"workers starting are capacity coming", scaleCfg(nil), []sample{{5, 6, 1}, {5, 6, 1}, {5, 6, 1}}, 6, ""},
		{"only the excess over those coming adds", scaleCfg(nil), []sample{{8, 6, 1}, {8, 6, 1}}, 9, "queue 8"},
		{"never above max", scaleCfg(nil), []sample{{100, 4, 4}, {100, 4, 4}}, 16, "queue 100"},
		{"at max nothing changes", scaleCfg(nil), []sample{{100, 16, 16}, {100, 16, 16}}, 16, ""},
		{"queue_per_worker", scaleCfg(func(a *config.Autoscale) { a.QueuePerWorker = 4 }), []sample{{10, 1, 1}, {10, 1, 1}}, 4, "queue 10"},
		{"an empty pool starts at once", scaleCfg(func(a *config.Autoscale) { a.Min = 0 }), []sample{{1, 0, 0}}, 1, "queue 1, no worker"},
		{"an empty pool starts as many as wait", scaleCfg(func(a *config.Autoscale) { a.Min = 0 }), []sample{{3, 0, 0}}, 3, "queue 3, no worker"},
		{"up_after 0 adds at the first sample", scaleCfg(func(a *config.Autoscale) { a.UpAfter = 0 }), []sample{{2, 1, 1}}, 3, "queue 2 for 0s"},
		{"a queue below idle keeps the pool", scaleCfg(nil), repeat(sample{0, 4, 4}, 20), 4, ""},
		{"an empty queue for idle stops one", scaleCfg(nil), repeat(sample{0, 4, 4}, 21), 3, "queue empty for 2s"},
		{"not below min", scaleCfg(nil), repeat(sample{0, 1, 1}, 30), 1, ""},
		{"not while workers are coming", scaleCfg(nil), repeat(sample{0, 4, 3}, 30), 4, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &scaler{cfg: tt.cfg}
			t0 := time.Unix(1000, 0)
			var got int
			var reason string
			for i, sm := range tt.samples {
				got, reason = s.observe(t0.Add(time.Duration(i)*100*time.Millisecond), sm.q, poolSize{sm.target, sm.ready})
			}
			last := tt.samples[len(tt.samples)-1]
			if got != tt.want || (tt.reason == "") != (reason == "") || !strings.Contains(reason, tt.reason) {
				t.Errorf("observe(%+v) = %d, %q, want %d, %q (from %d)", last, got, reason, tt.want, tt.reason, last.target)
			}
		})
	}
}

func repeat[T any](v T, n int) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// Once idle, the pool shrinks one at a time, down_interval apart, while
// the queue stays empty; a shrink followed within its wait by growth
// doubles the wait before the next, and a shrink that stands for its wait
// halves it again.
func TestScalerShrinkAndHold(t *testing.T) {
	t.Parallel()
	s := &scaler{cfg: scaleCfg(nil)}
	now := time.Unix(1000, 0)
	target := 4
	step := func(q int) (int, string) {
		now = now.Add(100 * time.Millisecond)
		n, why := s.observe(now, q, poolSize{target, target})
		target = n
		return n, why
	}
	var downs []time.Duration
	t0 := now
	for target > 1 {
		if before := target; func() bool { n, _ := step(0); return n < before }() {
			downs = append(downs, now.Sub(t0))
		}
	}
	if want := []time.Duration{2100 * time.Millisecond, 2300 * time.Millisecond, 2500 * time.Millisecond}; fmt.Sprint(downs) != fmt.Sprint(want) {
		t.Fatalf("shrinks at %v, want %v (idle 2s, then down_interval 200ms, down to min 1)", downs, want)
	}
	// Load comes back 1 s after the last shrink: it was a mistake.
	for range 9 {
		step(0)
	}
	step(3)
	if n, why := step(3); n != 4 {
		t.Fatalf("after a queue of 3 for 100ms: %d (%q), want 4", n, why)
	}
	if s.hold != 2 {
		t.Fatalf("hold = %d after growing within idle of a shrink, want 2", s.hold)
	}
	t1 := now
	for target == 4 {
		step(0)
	}
	if waited := now.Sub(t1); waited != 4100*time.Millisecond {
		t.Errorf("next shrink after %s of quiet, want 4.1s (2 × idle)", waited)
	}
	for range 50 {
		step(0)
	}
	if s.hold != 1 {
		t.Errorf("hold = %d after a shrink stood for its wait (4s), want 1", s.hold)
	}
}

// A model of a pool serving one request at a time per worker: requests
// arrive at rate(t) per second, each takes 100 ms of one worker, and
// wait in the accept queue meanwhile. New workers are ready after
// startup; a stopped worker finishes its request first. The scaler is
// sampled every 100 ms and the pool follows its answers, as the watcher's
// loop does. Time is synctest's: the model runs in 5 ms steps of fake time.
type model struct {
	cfg     config.Autoscale
	rate    func(t time.Duration) float64 // requests per second at t
	bursts  map[time.Duration]int         // extra requests arriving at once, at t
	startup time.Duration

	s       scaler
	queue   int
	workers []*simWorker
	target  int
	served  int
	history []int // target after each sample
	reasons []string
}

type simWorker struct {
	readyAt, busyUntil time.Time
	stopping           bool
}

const serviceTime = 100 * time.Millisecond

func (m *model) run(d time.Duration) {
	m.s.cfg = m.cfg
	t0 := time.Now()
	for range m.target {
		m.workers = append(m.workers, &simWorker{readyAt: t0})
	}
	var acc float64
	for el := time.Duration(0); el < d; el += 5 * time.Millisecond {
		time.Sleep(5 * time.Millisecond)
		now := time.Now()
		acc += m.rate(el) * 0.005
		n := int(acc)
		acc -= float64(n)
		m.queue += n + m.bursts[el]
		keep := m.workers[:0]
		for _, w := range m.workers {
			if now.Before(w.busyUntil) || !w.stopping {
				keep = append(keep, w)
			}
		}
		m.workers = keep
		ready := 0
		for _, w := range m.workers {
			if w.stopping || now.Before(w.readyAt) {
				continue
			}
			ready++
			if m.queue > 0 && !now.Before(w.busyUntil) {
				m.queue--
				m.served++
				w.busyUntil = now.Add(serviceTime)
			}
		}
		if el%(100*time.Millisecond) != 50*time.Millisecond {
			continue
		}
		to, why := m.s.observe(now, m.queue, poolSize{m.target, ready})
		for ; m.target < to; m.target++ {
			m.workers = append(m.workers, &simWorker{readyAt: now.Add(m.startup)})
		}
		for ; m.target > to; m.target-- {
			for _, w := range m.workers { // the oldest goes, as fill has it
				if !w.stopping {
					w.stopping = true
					break
				}
			}
		}
		m.history = append(m.history, m.target)
		if why != "" {
			m.reasons = append(m.reasons, fmt.Sprintf("%s: %d (%s)", now.Sub(t0).Round(time.Millisecond), to, why))
		}
	}
}

// reversals counts the changes of direction of the pool's size.
func reversals(h []int) int {
	n, dir := 0, 0
	for i := 1; i < len(h); i++ {
		d := h[i] - h[i-1]
		if d == 0 {
			continue
		}
		if d > 0 {
			d = 1
		} else {
			d = -1
		}
		if dir != 0 && d != dir {
			n++
		}
		dir = d
	}
	return n
}

// at is the size of the pool after the sample at t (they come 100 ms apart).
func (m *model) at(t time.Duration) int {
	return m.history[min(int(t/(100*time.Millisecond)), len(m.history)-1)]
}

func maxOf(h []int) int {
	m := 0
	for _, v := range h {
		m = max(m, v)
	}
	return m
}

func TestScalerUnderLoad(t *testing.T) {
	t.Parallel()
	const step, stop = 2 * time.Second, 7 * time.Second
	tests := []struct {
		name  string
		m     *model
		d     time.Duration
		check func(t *testing.T, m *model)
	}{
		{"step", &model{cfg: scaleCfg(nil), target: 1, startup: 30 * time.Millisecond,
			rate: func(t time.Duration) float64 {
				switch {
				case t < step:
					return 5
				case t < stop:
					return 120 // 12 workers' worth
				}
				return 0
			}}, 14 * time.Second, func(t *testing.T, m *model) {
			if n := m.at(step + time.Second); n < 12 {
				t.Errorf("1 s after the step: %d workers, want at least the 12 the load needs", n)
			}
			if n := m.at(stop); n > 16 {
				t.Errorf("during the step: %d workers, above max", n)
			}
			if n := m.history[len(m.history)-1]; n != 1 {
				t.Errorf("long after the load stopped: %d workers, want min 1", n)
			}
			// The queue cannot tell a pool of just enough workers from one
			// with some to spare: once idle, the pool shrinks until
			// connections wait again, and grows back (once: the next
			// probe waits twice as long, past the step's end).
			if r := reversals(m.history); r > 3 {
				t.Errorf("%d changes of direction, want at most 3 (up with the step, one probe, down after it)", r)
			}
			for el := step + time.Second; el < stop; el += 100 * time.Millisecond {
				if n := m.at(el); n < 11 {
					t.Errorf("at %s, during the step: %d workers, below the 12 the load needs less one", el, n)
					break
				}
			}
		}},
		{"ramp", &model{cfg: scaleCfg(nil), target: 1, startup: 30 * time.Millisecond,
			rate: func(t time.Duration) float64 { return min(float64(t)/float64(10*time.Second), 1) * 140 }},
			15 * time.Second, func(t *testing.T, m *model) {
				if r := reversals(m.history[:100]); r != 0 {
					t.Errorf("sizes %v: %d changes of direction on a rising load, want 0", m.history[:100], r)
				}
				if n := m.at(10 * time.Second); n < 14 {
					t.Errorf("at the top of the ramp: %d workers, want at least the 14 it needs", n)
				}
			}},
		{"spike shorter than the reaction", &model{cfg: scaleCfg(func(a *config.Autoscale) { a.Min = 4 }), target: 4,
			rate: func(time.Duration) float64 { return 0 }, bursts: map[time.Duration]int{1030 * time.Millisecond: 8}},
			5 * time.Second, func(t *testing.T, m *model) {
				if maxOf(m.history) != 4 || reversals(m.history) != 0 {
					t.Errorf("sizes %v: a queue seen by one sample changed the pool", m.history)
				}
			}},
		{"spike longer than the reaction", &model{cfg: scaleCfg(func(a *config.Autoscale) { a.Min = 4 }), target: 4,
			rate: func(time.Duration) float64 { return 0 }, bursts: map[time.Duration]int{1030 * time.Millisecond: 12}},
			8 * time.Second, func(t *testing.T, m *model) {
				if maxOf(m.history) != 8 || reversals(m.history) != 1 || m.history[len(m.history)-1] != 4 {
					t.Errorf("sizes %v: want one step up (to 8: the least queue seen) and back to 4 after idle", m.history)
				}
			}},
		{"flapping", &model{cfg: scaleCfg(nil), target: 1, startup: 30 * time.Millisecond,
			rate: func(t time.Duration) float64 {
				if t < 10*time.Second && t%(600*time.Millisecond) < 300*time.Millisecond {
					return 120
				}
				return 0
			}}, 15 * time.Second, func(t *testing.T, m *model) {
			// 33 changes of load in 10 s. The pool overshoots (the queue
			// holds a backlog as well as the load), settles after idle at
			// the 12 the peaks need, and probes below that once or twice,
			// further apart each time: it does not follow the load.
			during := m.history[:100]
			if r := reversals(during); r > 4 {
				t.Errorf("sizes %v: %d changes of direction while the load flapped every 300ms, want at most 4", during, r)
			}
			if n := during[len(during)-1]; n < 12 {
				t.Errorf("after 10 s of flapping: %d workers, want at least the 12 the peaks need", n)
			}
		}},
		{"coming and going as slowly as idle", &model{cfg: scaleCfg(nil), target: 1, startup: 30 * time.Millisecond,
			rate: func(t time.Duration) float64 {
				if t < 40*time.Second && t%(4*time.Second) < 1500*time.Millisecond {
					return 120
				}
				return 0
			}}, 45 * time.Second, func(t *testing.T, m *model) {
			// Lulls of 2.5 s, longer than idle: the pool shrinks in them
			// as told, but each shrink undone within its wait doubles the
			// next wait, so it follows fewer and fewer of the 10 lulls.
			if r := reversals(m.history[:400]); r > 8 {
				t.Errorf("%d changes of direction over 10 lulls, want at most 8 (20 would follow every one)", r)
			}
			if r := reversals(m.history[200:400]); r > 3 {
				t.Errorf("%d changes of direction over the last 5 lulls, want at most 3", r)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { tt.m.run(tt.d) })
			tt.check(t, tt.m)
			if t.Failed() {
				t.Logf("decisions:\n%s", strings.Join(tt.m.reasons, "\n"))
			}
		})
	}
}
