package arbiter

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// OOM kills: read from the watcher's cgroups (and each worker's), at a
// worker's exit, at a stop, and every oomPoll under cgroup.memory_max.

// oomPoll is how often the OOM kill counters of a watcher with
// cgroup.memory_max are read: the OOM killer may kill a process a worker
// started and leave the worker running, and nothing else would tell.
const oomPoll = time.Second

// pollOOM reads the OOM kill counters of w's cgroups when it is due.
func (w *Watcher) pollOOM(now time.Time) {
	next := w.oomNext()
	if next.IsZero() || now.Before(next) {
		return
	}
	c := w.cg
	c.oomAt = now.Add(oomPoll)
	if w.cfg.Cgroup.Mode != config.CgroupWorker {
		w.reportOOM(c.group, &c.ooms, "")
		return
	}
	for pid, g := range c.workers {
		seen := c.workerOOMs[pid]
		w.reportOOM(g, &seen, fmt.Sprintf(" (worker %d's cgroup)", pid))
		if c.workerOOMs == nil {
			c.workerOOMs = map[int]uint64{}
		}
		c.workerOOMs[pid] = seen
	}
}

// oomNext is when pollOOM is next due, or zero: only with a memory limit
// and workers running.
func (w *Watcher) oomNext() time.Time {
	c := w.cg
	if c == nil || c.group == nil || w.cfg.Cgroup.MemoryMax <= 0 || w.live() == 0 {
		return time.Time{}
	}
	if c.oomAt.IsZero() {
		c.oomAt = time.Now().Add(oomPoll)
	}
	return c.oomAt
}

// reportOOM publishes an oom event when g's OOM kill count has grown past
// *seen.
func (w *Watcher) reportOOM(g *cgroups.Group, seen *uint64, where string) {
	if g == nil {
		return
	}
	n, ok := g.OOMKills()
	if !ok || n <= *seen {
		return
	}
	killed := n - *seen
	*seen = n
	w.restarts.oomAt = time.Now()
	reason := fmt.Sprintf("the kernel's OOM killer killed %d process", killed)
	if killed > 1 {
		reason += "es"
	}
	reason += where
	if m := w.cfg.Cgroup.MemoryMax; m > 0 {
		reason = "cgroup.memory_max " + formatBytes(m) + " reached: " + reason
	}
	w.log.Warn("oom", "reason", reason)
	w.emit(pubsub.Event{Kind: pubsub.OOM, Reason: reason})
}

// formatBytes writes n as the config does: 512M, 2G, or bytes.
func formatBytes(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
