package arbiter

import (
	"fmt"
	"os"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Resource limits (limit.max_rss, limit.max_cpu). Every limit.interval the
// loop hands the pids of its workers to a short-lived goroutine that reads
// /proc (a read can stall on a process in the middle of an mmap, and the
// loop must not), which sends the raw figures back; the loop alone keeps
// the previous CPU times and decides. At most one sampling is in flight,
// and its result channel has room for it, so the goroutine never waits on
// the loop. A worker over a limit at every sample for limit.grace is
// replaced gracefully: the replacement first, then the old worker stopped
// once the replacement is ready.

// usage is one sample of one worker.
type usage struct {
	pid   int
	ticks uint64 // user + system CPU time, in clock ticks
	rss   int64  // bytes
	err   error
}

// limitSample is one sampling pass.
type limitSample struct {
	at    time.Time
	procs []usage
}

var pageSize = int64(os.Getpagesize())

// sampleUsage reads the CPU time and resident size of each of pids.
func sampleUsage(pids []int) limitSample {
	var r procfs.Reader
	s := limitSample{at: time.Now(), procs: make([]usage, len(pids))}
	for i, pid := range pids {
		st, err := r.Stat(pid)
		s.procs[i] = usage{pid: pid, ticks: st.Utime + st.Stime, rss: int64(st.RSS) * pageSize, err: err}
	}
	return s
}

// startSampling starts a sampling pass when limits are set, one is due and
// none is in flight.
func (w *Watcher) startSampling(now time.Time) {
	l := w.cfg.Limits
	if !l.Enabled() || w.sampling || now.Before(w.limitAt) {
		return
	}
	w.limitAt = now.Add(l.Interval)
	var pids []int
	for _, p := range w.procs {
		if !p.stopping && !p.retiring {
			pids = append(pids, p.Pid)
		}
	}
	if len(pids) == 0 {
		return
	}
	w.sampling = true
	w.checks.Go(func() { w.limitc <- sampleUsage(pids) })
}

// limitNext is when the next sampling is due, or zero.
func (w *Watcher) limitNext() time.Time {
	if !w.cfg.Limits.Enabled() || w.sampling || w.live() == 0 {
		return time.Time{}
	}
	if w.limitAt.IsZero() {
		w.limitAt = time.Now().Add(w.cfg.Limits.Interval)
	}
	return w.limitAt
}

// handleLimits judges a sampling pass.
func (w *Watcher) handleLimits(s limitSample) {
	w.sampling = false
	l := w.cfg.Limits
	if !l.Enabled() {
		return
	}
	for _, u := range s.procs {
		p := w.procs[u.pid]
		if p == nil || p.stopping || p.retiring || u.err != nil {
			continue
		}
		cpu, cpuKnown := 0.0, false
		if !p.cpuAt.IsZero() && s.at.After(p.cpuAt) && u.ticks >= p.cpuTicks {
			cpu = float64(u.ticks-p.cpuTicks) / procfs.ClockTicks / s.at.Sub(p.cpuAt).Seconds() * 100
			cpuKnown = true
		}
		p.cpuTicks, p.cpuAt = u.ticks, s.at
		var over string
		switch {
		case l.MaxRSS > 0 && u.rss > l.MaxRSS:
			over = fmt.Sprintf("rss %s over limit.max_rss %s", mib(u.rss), mib(l.MaxRSS))
		case l.MaxCPU > 0 && cpuKnown && cpu > l.MaxCPU:
			over = fmt.Sprintf("cpu %.1f%% over limit.max_cpu %g%%", cpu, l.MaxCPU)
		}
		if over == "" {
			if !p.overSince.IsZero() {
				w.log.Info("back under its limits", "pid", p.Pid, "after", s.at.Sub(p.overSince).Round(time.Millisecond))
			}
			p.overSince = time.Time{}
			continue
		}
		if p.overSince.IsZero() {
			p.overSince = s.at
			w.log.Warn("over a limit", "pid", p.Pid, "wid", p.Wid, "limit", over, "grace", l.Grace)
		}
		if s.at.Sub(p.overSince) < l.Grace {
			continue
		}
		reason := fmt.Sprintf("%s for %s", over, s.at.Sub(p.overSince).Round(time.Millisecond))
		w.log.Error("over a limit: replacing", "pid", p.Pid, "wid", p.Wid, "reason", reason)
		w.emit(pubsub.Event{Kind: pubsub.Limit, Pid: p.Pid, Wid: p.Wid, Reason: reason})
		p.cause = ReasonLimits
		w.retire(p)
	}
	w.progress()
}

// mib writes a byte count for a person.
func mib(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}
