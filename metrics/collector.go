package metrics

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Drop is one place where events can be lost, with its running count (see
// [Options.Drops]).
type Drop struct {
	// Queue names the place, the metric's queue label: "bus" (an
	// in-process subscriber's buffer: the event endpoint's relay, the
	// console) or "subscriber" (a ZeroMQ subscriber's send queue).
	Queue string
	// Count returns the events lost there since the arbiter started. It
	// must not block.
	Count func() uint64
}

var (
	descUp = prometheus.NewDesc("ringmaster_watcher_up",
		"1 if the watcher's loop answered the scrape within its deadline, 0 if not (its other series are then missing).",
		[]string{"watcher"}, nil)
	descState = prometheus.NewDesc("ringmaster_watcher_state",
		"The watcher's state: 1 for the current one of stopped, starting, active, stopping.",
		[]string{"watcher", "state"}, nil)
	descProcs = prometheus.NewDesc("ringmaster_watcher_processes",
		"Workers of the watcher by state: ready, starting (spawned, not yet ready) or stopping.",
		[]string{"watcher", "state"}, nil)
	descTarget = prometheus.NewDesc("ringmaster_watcher_target_processes",
		"The number of workers the watcher aims for: numprocesses, as resized since (incr, decr, autoscaling).",
		[]string{"watcher"}, nil)
	descCPU = prometheus.NewDesc("ringmaster_worker_cpu_seconds_total",
		"User and system cpu time of the watcher's workers (and of their reaped children), summed; exited workers count up to the last scrape that saw them.",
		[]string{"watcher"}, nil)
	descRSS = prometheus.NewDesc("ringmaster_worker_resident_memory_bytes",
		"Resident memory of the watcher's workers, summed.",
		[]string{"watcher"}, nil)
	descQueue = prometheus.NewDesc("ringmaster_socket_accept_queue_length",
		"Connections waiting in the socket's accept queue for a worker to accept them.",
		[]string{"socket"}, nil)
	descQueueMax = prometheus.NewDesc("ringmaster_socket_accept_queue_limit",
		"The limit of the socket's accept queue (the backlog as the kernel took it).",
		[]string{"socket"}, nil)
	descDropped = prometheus.NewDesc("ringmaster_events_dropped_total",
		"Events lost because a queue was full: bus (an in-process subscriber such as the event endpoint's relay or the console) or subscriber (a ZeroMQ subscriber too slow to read).",
		[]string{"queue"}, nil)
)

// collector is the arbiter as Prometheus metrics, read at each scrape.
type collector struct {
	a        *arbiter.Arbiter
	drops    []Drop
	deadline time.Duration
	log      *slog.Logger

	mu     sync.Mutex // one scrape at a time over the fields below
	proc   procfs.Reader
	stat   func(pid int) (procfs.Stat, error) // proc.Stat; tests fake errors /proc will not give
	queues sockets.QueueReader
	qbuf   []sockets.Queue
	cpu    map[*arbiter.Watcher]*cpuCount
}

// cpuCount keeps one watcher's cpu counter monotonic across its workers'
// exits: the ticks of each worker as last seen, and those of the workers
// gone since.
type cpuCount struct {
	seen    map[int]cpuMark // by pid
	retired uint64          // clock ticks
}

// cpuMark is a worker's cpu time at the last scrape; start tells a reused
// pid apart.
type cpuMark struct{ start, ticks uint64 }

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descUp, descState, descProcs, descTarget, descCPU, descRSS,
		descQueue, descQueueMax, descDropped} {
		ch <- d
	}
	describeRestarts(ch)
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ws := c.a.Watchers()
	live := make(map[*arbiter.Watcher]bool, len(ws))
	for _, a := range ask(context.Background(), ws, c.deadline) {
		live[a.w] = true
		c.collectWatcher(ch, a)
	}
	for w := range c.cpu {
		if !live[w] {
			delete(c.cpu, w) // removed: its series go with it
		}
	}
	c.collectSockets(ch)
	for _, d := range c.drops {
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(d.Count()), d.Queue)
	}
}

// collectWatcher sends the series of one watcher's status, and samples
// its workers.
func (c *collector) collectWatcher(ch chan<- prometheus.Metric, a answer) {
	w, st, name := a.w, a.st, a.w.Name()
	if a.err != nil {
		c.log.Warn("metrics: watcher did not answer", "watcher", name, "err", a.err)
		ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 0, name)
		return
	}
	ch <- prometheus.MustNewConstMetric(descUp, prometheus.GaugeValue, 1, name)
	for _, s := range []arbiter.State{arbiter.Stopped, arbiter.Starting, arbiter.Active, arbiter.Stopping} {
		ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, boolValue(st.State == s), name, s.String())
	}
	var ready, starting, stopping float64
	for _, p := range st.Procs {
		switch {
		case p.Stopping:
			stopping++
		case p.Ready:
			ready++
		default:
			starting++
		}
	}
	ch <- prometheus.MustNewConstMetric(descProcs, prometheus.GaugeValue, ready, name, "ready")
	ch <- prometheus.MustNewConstMetric(descProcs, prometheus.GaugeValue, starting, name, "starting")
	ch <- prometheus.MustNewConstMetric(descProcs, prometheus.GaugeValue, stopping, name, "stopping")
	ch <- prometheus.MustNewConstMetric(descTarget, prometheus.GaugeValue, float64(st.Target), name)
	collectRestarts(ch, name, st)

	cpu, rss := c.sample(w, st.Procs)
	ch <- prometheus.MustNewConstMetric(descCPU, prometheus.CounterValue, float64(cpu)/procfs.ClockTicks, name)
	ch <- prometheus.MustNewConstMetric(descRSS, prometheus.GaugeValue, float64(rss), name)
}

// sample reads /proc/PID/stat of each worker and returns the watcher's cpu
// counter, in clock ticks, and its workers' resident memory, in bytes.
func (c *collector) sample(w *arbiter.Watcher, procs []arbiter.ProcessInfo) (ticks, rss uint64) {
	cc := c.cpu[w]
	if cc == nil {
		cc = &cpuCount{seen: map[int]cpuMark{}}
		c.cpu[w] = cc
	}
	seen := make(map[int]cpuMark, len(procs))
	for _, p := range procs {
		st, err := c.stat(p.Pid)
		if errors.Is(err, procfs.ErrNoProcess) {
			continue // exited meanwhile: retired below, as of the last scrape
		}
		if err != nil {
			// Unreadable this time: keep its last figure, so that it is
			// neither lost nor, once readable again, counted twice.
			if old, ok := cc.seen[p.Pid]; ok {
				seen[p.Pid] = old
				ticks += old.ticks
			}
			continue
		}
		m := cpuMark{start: st.StartTime, ticks: st.Utime + st.Stime + st.Cutime + st.Cstime}
		if old, ok := cc.seen[p.Pid]; ok && old.start != m.start {
			cc.retired += old.ticks // the pid was reused by a new worker
			delete(cc.seen, p.Pid)
		}
		seen[p.Pid] = m
		ticks += m.ticks
		rss += st.RSS * pageSize
	}
	for pid, old := range cc.seen {
		if _, ok := seen[pid]; !ok {
			cc.retired += old.ticks
		}
	}
	cc.seen = seen
	return ticks + cc.retired, rss
}

// collectSockets reads every socket's accept queue; sockets without one
// (datagram, reuseport) have no series.
func (c *collector) collectSockets(ch chan<- prometheus.Metric) {
	socks := c.a.Sockets()
	c.qbuf = c.queues.Read(c.qbuf, socks)
	for i, q := range c.qbuf {
		if q.Err != nil {
			continue
		}
		name := socks[i].Name()
		ch <- prometheus.MustNewConstMetric(descQueue, prometheus.GaugeValue, float64(q.Len), name)
		ch <- prometheus.MustNewConstMetric(descQueueMax, prometheus.GaugeValue, float64(q.Max), name)
	}
}

var pageSize = uint64(os.Getpagesize())

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
