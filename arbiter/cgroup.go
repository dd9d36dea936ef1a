package arbiter

import (
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// How long the watcher loop waits, when a watcher stops, for what its
// cgroup still held to be gone; and how long removal waits for a cgroup
// to empty once the loop no longer runs. Both bound a wait that normally
// lasts a millisecond: SIGKILL takes effect at once, except on a process
// in an uninterruptible sleep.
const (
	cgroupSettle = 200 * time.Millisecond
	cgroupDrain  = 5 * time.Second
)

// hostCgroups is read once per process, where it started: the cgroups
// package makes every tree beside the leaf this process may move into
// (cgroups.Tree), never inside it.
var hostCgroups = sync.OnceValues(cgroups.Detect)

// cgroupTrees numbers the arbiters of this process (tests run several), so
// that each has a tree of its own.
var cgroupTrees atomic.Int32

// CgroupInfo says how an arbiter uses the host's cgroups. The zero value:
// it does not.
type CgroupInfo struct {
	// Host is the host's layout: unified, hybrid, legacy or none.
	Host string
	// Kill is how a watcher's cgroup is emptied when it stops ("v2
	// cgroup.kill", "v1 freezer", ...); empty without cgroups.
	Kill string
	// Memory, Pids and CPU name the cgroup version that enforces
	// cgroup.memory_max, cgroup.pids_max and cgroup.cpu_quota ("v1",
	// "v2"), or are empty where nothing can.
	Memory, Pids, CPU string
	// Dirs are the arbiter's own cgroup directories, one per hierarchy it
	// uses; a watcher's cgroup is DIR/NAME in each, NAME being the
	// watcher's name with any character but letters, digits, '-' and '_'
	// replaced.
	Dirs []string
	// Reason says why cgroups are not used, when they are not.
	Reason string
}

// cgroupRoot is an arbiter's share of the host's cgroups. The Run
// goroutine sets it before any watcher loop runs and only reads it after.
type cgroupRoot struct {
	tree *cgroups.Tree // nil: workers run without cgroups
	seq  int           // the tree's number in this process (cgroupTrees)
	info CgroupInfo
	// adopting is set by startCgroupsFrom: the tree, if any, is the one an
	// in-place upgrade handed over (cgroup_handover.go).
	adopting bool
	// noClone3 makes every spawn take the spawner's fallback, clone() and
	// writes to cgroup.procs, as on a kernel without clone3: for tests,
	// set between New and Run.
	noClone3 bool
}

// Cgroups returns how the arbiter uses cgroups: known once Run has
// started (Started is closed), the zero value before.
func (a *Arbiter) Cgroups() CgroupInfo {
	select {
	case <-a.started:
		return a.cg.info
	default:
		return CgroupInfo{}
	}
}

// startCgroups makes the arbiter's cgroup tree, saying once in the log
// what the host offers, or that workers run without cgroups and why.
func (a *Arbiter) startCgroups() {
	host, err := hostCgroups()
	if err != nil {
		a.cg.info.Reason = err.Error()
		a.log.Warn("cgroups unreadable: workers run without them (no cgroup kill on stop, cgroup.* limits not enforced)", "err", err)
		return
	}
	a.cg.info.Host = host.Mode()
	seq := int(cgroupTrees.Add(1))
	tree, err := cgroups.NewTree(host, "ringmaster", seq)
	if err != nil {
		a.cg.info.Reason = err.Error()
		a.log.Warn("cgroups unavailable: workers run without them (no cgroup kill on stop, cgroup.* limits not enforced)",
			"host", host.Mode(), "reason", err)
		return
	}
	if m := tree.Moved(); m != "" {
		a.log.Info("cgroups: the arbiter moved into a leaf cgroup", "why", m)
	}
	for _, d := range tree.Swept() {
		a.log.Warn("removed the cgroup of an arbiter that died, killing what ran in it", "dir", d)
	}
	logUnswept(a.log, tree.Unswept())
	version := func(c string) string {
		if x := tree.Carrier(c); x != nil {
			return "v" + strconv.Itoa(x.Version)
		}
		return ""
	}
	a.cg.tree, a.cg.seq = tree, seq
	a.cg.info = CgroupInfo{Host: host.Mode(), Kill: tree.KillMethod(), Dirs: tree.Dirs(),
		Memory: version(cgroups.Memory), Pids: version(cgroups.Pids), CPU: version(cgroups.CPU)}
	none := func(s string) string {
		if s == "" {
			return "none"
		}
		return s
	}
	a.log.Info("cgroups", "host", host.Mode(), "dirs", tree.Dirs(), "kill", tree.KillMethod(),
		"memory", none(a.cg.info.Memory), "pids", none(a.cg.info.Pids), "cpu", none(a.cg.info.CPU))
	for _, n := range tree.Notes() {
		a.log.Info("cgroups: not used", "reason", n)
	}
}

// logUnswept says which trees beside its own the arbiter left alone, and
// why: one line per tree and reason, naming its directory in each
// hierarchy.
func logUnswept(log *slog.Logger, us []cgroups.Unswept) {
	type key struct{ name, reason string }
	var order []key
	dirs := map[key][]string{}
	for _, u := range us {
		k := key{path.Base(u.Dir), u.Reason}
		if dirs[k] == nil {
			order = append(order, k)
		}
		dirs[k] = append(dirs[k], u.Dir)
	}
	for _, k := range order {
		log.Info("cgroup tree left alone", "tree", k.name, "reason", k.reason, "dirs", dirs[k])
	}
}

// closeCgroups kills what is left in the arbiter's cgroups and removes
// them, once every watcher loop has ended.
func (a *Arbiter) closeCgroups() {
	if a.cg.tree == nil {
		return
	}
	if err := a.cg.tree.Close(time.Now().Add(cgroupDrain)); err != nil {
		a.log.Warn("cgroups not removed", "err", err)
	}
}

// attachCgroup gives a new watcher its cgroup state, which its spawns and
// stops then use.
func (a *Arbiter) attachCgroup(w *Watcher) {
	w.cg = &watcherCgroup{root: &a.cg, log: w.log, name: cgroups.Name(w.name), workers: map[int]*cgroups.Group{}}
}

// dropCgroup removes the cgroups of a watcher whose loop has ended (it was
// removed): what is left in them is killed, or with nostop moved to the
// arbiter's own cgroup to run on, as rm --nostop asks.
func (a *Arbiter) dropCgroup(w *Watcher, nostop bool) {
	c := w.cg
	if c == nil || c.group == nil {
		return
	}
	if nostop {
		if err := c.group.Evacuate(); err != nil {
			w.log.Warn("cannot move the workers left running out of the watcher's cgroup; they stay in it and are killed when the arbiter exits", "err", err)
			return
		}
	} else {
		if err := c.group.Kill(); err != nil {
			w.log.Warn("cgroup kill failed", "err", err)
		}
		if err := c.group.Wait(time.Now().Add(cgroupDrain)); err != nil {
			w.log.Warn("cgroup not empty", "err", err)
		}
	}
	if err := c.group.Remove(); err != nil {
		w.log.Warn("cgroup not removed", "err", err)
	}
	c.group, c.dead = nil, nil
}

// watcherCgroup is one watcher's cgroups. The watcher's loop owns it (and,
// once the loop has ended, the Run goroutine).
type watcherCgroup struct {
	root    *cgroupRoot
	log     *slog.Logger
	name    string                 // the watcher's cgroup directory name
	group   *cgroups.Group         // the watcher's, once set up
	applied config.Cgroup          // the settings group was set up with
	workers map[int]*cgroups.Group // with cgroup = worker: each worker's, by pid
	dead    []*cgroups.Group       // killed workers' cgroups not yet removed
	// sweepAt is when dead is next swept; sweepGap the pause after that.
	sweepAt  time.Time
	sweepGap time.Duration
	seq      int    // numbers the workers' cgroups
	ooms     uint64 // OOM kills of the watcher's cgroup reported
	// workerOOMs are the OOM kills reported of each worker's cgroup, by
	// pid; oomAt is when the counters are next read.
	workerOOMs map[int]uint64
	oomAt      time.Time
	// groupKilled holds the workers reaped during a stop, whose process
	// groups got SIGKILL then: what the sweep finds of those groups is
	// already dying, and is not reported killed twice.
	groupKilled map[int]bool
	// reported holds the pids whose kill event killLeftovers published and
	// that may still be dying: a later sweep of the watcher's cgroup,
	// which lists the workers' cgroups too, finds them again.
	reported map[int]bool
	// killed is set when the watcher's cgroup had a cgroup.kill and could
	// not be made anew: spawns then join it without clone3 (cgroupStopped).
	killed    bool
	lastErr   string          // the last setup failure logged
	warned    map[string]bool // keys warned about as not enforced
	warnedFor config.Cgroup   // the settings warned is about
}

// cgroupKeys names the key of each controller's limit, for warnings.
var cgroupKeys = map[string]string{cgroups.Memory: "cgroup.memory_max", cgroups.Pids: "cgroup.pids_max", cgroups.CPU: "cgroup.cpu_quota"}

func cgroupLimits(c config.Cgroup) cgroups.Limits {
	return cgroups.Limits{MemoryMax: c.MemoryMax, PidsMax: c.PidsMax, CPUQuota: c.CPUQuota}
}

// prepare sets up the cgroup a new worker of w (slot wid) is to join and
// opens its cgroup.procs files, for the spawner. done must be called after
// the spawn, with the worker's pid if it started. A cgroup that cannot be
// set up is logged (once for the same reason) and the worker starts
// without it: cgroups are a help, never a condition.
func (c *watcherCgroup) prepare(w *config.Watcher, wid int) (joins []cgroups.Join, done func(pid int, started bool)) {
	nothing := func(int, bool) {}
	if c == nil || w.Cgroup.Mode == config.CgroupOff {
		return nil, nothing
	}
	if c.warnedFor != w.Cgroup {
		c.warned, c.warnedFor = nil, w.Cgroup
	}
	lim := cgroupLimits(w.Cgroup)
	if c.root.tree == nil {
		c.warn(lim.Controllers(), "no cgroups: "+c.root.info.Reason)
		return nil, nothing
	}
	c.sweep()
	failed := false
	if c.group == nil || c.applied != w.Cgroup {
		g := c.group
		if g == nil {
			g = c.root.tree.Group(c.name)
		}
		own := lim
		if w.Cgroup.Mode == config.CgroupWorker {
			own = cgroups.Limits{} // each worker's cgroup has them
		}
		unenforced, err := g.Setup(own)
		switch {
		case err == nil:
			c.group, c.applied = g, w.Cgroup
			c.warn(unenforced, "no writable cgroup controller for it on this host")
		case c.group == nil:
			c.fail(err)
			return nil, nothing
		default:
			// New settings that do not apply leave the old ones: the
			// worker still joins the cgroup, so that a stop reaches
			// everything it starts. Tried again at the next spawn.
			c.fail(err)
			failed = true
		}
	}
	target := c.group
	if w.Cgroup.Mode == config.CgroupWorker {
		c.seq++
		target = c.group.Sub("wid" + strconv.Itoa(wid) + "-" + strconv.Itoa(c.seq))
		unenforced, err := target.Setup(lim)
		if err != nil {
			c.fail(err)
			_ = target.Remove()
			return nil, nothing
		}
		c.warn(unenforced, "no writable cgroup controller for it on this host")
	}
	js, err := target.Open()
	if err != nil {
		c.fail(err)
		return nil, nothing
	}
	if !failed {
		c.lastErr = ""
	}
	return js, func(pid int, started bool) {
		cgroups.CloseJoins(js)
		if target == c.group {
			return
		}
		if started {
			c.workers[pid] = target
		} else if err := target.Remove(); err != nil {
			c.bury(target)
		}
	}
}

// fail logs a setup failure, unless it is the one logged last.
func (c *watcherCgroup) fail(err error) {
	if err.Error() != c.lastErr {
		c.log.Warn("cgroup unavailable: the worker starts without it", "err", err)
		c.lastErr = err.Error()
	}
}

// warn says, once per key, that a configured limit is not enforced.
func (c *watcherCgroup) warn(controllers []string, reason string) {
	for _, ctl := range controllers {
		key := cgroupKeys[ctl]
		if c.warned[key] {
			continue
		}
		if c.warned == nil {
			c.warned = map[string]bool{}
		}
		c.warned[key] = true
		c.log.Warn("limit not enforced", "key", key, "reason", reason)
	}
}

// sweep removes the cgroups of dead workers that have emptied since, and
// forgets the reported pids that are gone.
func (c *watcherCgroup) sweep() {
	c.dead = slices.DeleteFunc(c.dead, func(g *cgroups.Group) bool {
		if busy, _ := g.Populated(); busy {
			_ = g.Kill()
			return false
		}
		if err := g.Remove(); err != nil {
			c.log.Debug("cgroup not removed yet", "cgroup", g.Path(), "err", err)
			return false
		}
		return true
	})
	for pid := range c.reported {
		if unix.Kill(pid, 0) == unix.ESRCH {
			delete(c.reported, pid)
		}
	}
}

// cgroupExited is handleExit's part: it reports OOM kills in the worker's
// cgroup (or the watcher's) and, with a cgroup per worker, kills what the
// worker left in its own, daemons that escaped its process group included.
func (w *Watcher) cgroupExited(p *worker) {
	c := w.cg
	if c == nil {
		return
	}
	g := c.workers[p.Pid]
	if g == nil {
		w.reportOOM(c.group, &c.ooms, "")
		if w.state == Stopping {
			if c.groupKilled == nil {
				c.groupKilled = map[int]bool{}
			}
			c.groupKilled[p.Pid] = true
		}
		return
	}
	delete(c.workers, p.Pid)
	seen := c.workerOOMs[p.Pid]
	delete(c.workerOOMs, p.Pid)
	w.reportOOM(g, &seen, fmt.Sprintf(" (worker %d's cgroup)", p.Pid))
	w.killLeftovers(g, p.Wid, map[int]bool{p.Pid: true})
	if err := g.Remove(); err != nil {
		// Killed, but not yet gone (the loop does not wait for them):
		// removed by a timed sweep.
		c.bury(g)
	}
}

// bury leaves g, a dead worker's cgroup that could not be removed yet, to
// the timed sweeps, the first one soon.
func (c *watcherCgroup) bury(g *cgroups.Group) {
	c.dead = append(c.dead, g)
	c.sweepAt, c.sweepGap = time.Now().Add(sweepFirst), sweepFirst
}

// A dead worker's cgroup is swept sweepFirst after its worker was reaped,
// then at doubling pauses up to sweepMax while something in it lingers.
const (
	sweepFirst = 20 * time.Millisecond
	sweepMax   = 2 * time.Second
)

// sweepDead removes the dead workers' cgroups that have emptied, when a
// sweep is due, and sets the next.
func (w *Watcher) sweepDead(now time.Time) {
	c := w.cg
	if c == nil || len(c.dead) == 0 || now.Before(c.sweepAt) {
		return
	}
	c.sweep()
	c.sweepGap = min(max(2*c.sweepGap, sweepFirst), sweepMax)
	c.sweepAt = now.Add(c.sweepGap)
}

// sweepNext is when sweepDead is next due, or zero.
func (w *Watcher) sweepNext() time.Time {
	if c := w.cg; c != nil && len(c.dead) > 0 {
		return c.sweepAt
	}
	return time.Time{}
}

// cgroupStopped is finishStop's part: the last worker has been reaped, and
// what is still in the watcher's cgroup (daemons its workers started) is
// killed, with a bounded wait for it to be gone, so that a stop leaves
// nothing running and a restart starts clean.
func (w *Watcher) cgroupStopped() {
	c := w.cg
	if c == nil || c.group == nil {
		return
	}
	if w.cfg.Cgroup.Mode != config.CgroupWorker {
		// With a cgroup per worker, each reported its own; the watcher's
		// may count theirs again (v2 counts up the tree).
		w.reportOOM(c.group, &c.ooms, "")
	}
	killed := c.groupKilled
	c.groupKilled = nil
	if w.killLeftovers(c.group, 0, killed) {
		err := c.group.Wait(time.Now().Add(cgroupSettle))
		if err != nil {
			w.log.Warn("cgroup not empty after a stop; emptied later", "err", err)
		}
		// A child that clone3's CLONE_INTO_CGROUP creates in a cgroup that
		// had a cgroup.kill is killed at birth on this kernel (6.18), every
		// time: the kill sequence it is checked against is its parent's
		// cgroup's. So the killed cgroup goes, and the next spawn makes it
		// anew; one that cannot go yet is joined by a write to
		// cgroup.procs instead, which is not affected.
		c.sweep()
		if err == nil && c.group.Remove() == nil {
			c.group, c.applied, c.ooms, c.killed = nil, config.Cgroup{}, 0, false
			return
		}
		c.killed = true
	}
	c.sweep()
}

// killLeftovers kills every process in g, publishing a kill event for
// each that was not already dying (gone, or in one of the process groups
// groupKilled, which got SIGKILL when their worker was reaped), and
// reports whether there was any.
func (w *Watcher) killLeftovers(g *cgroups.Group, wid int, groupKilled map[int]bool) bool {
	pids, _ := g.Procs()
	if len(pids) == 0 {
		return false
	}
	// Judged before the kill: after it, a killed process may already be
	// reaped, and so look as if it had been gone.
	c := w.cg
	var report []int
	for _, pid := range pids {
		if pg, err := unix.Getpgid(pid); err == nil && !groupKilled[pg] && !c.reported[pid] {
			report = append(report, pid)
		}
	}
	if err := g.Kill(); err != nil {
		w.log.Warn("cgroup kill failed", "cgroup", g.Path(), "err", err)
		return true
	}
	w.log.Info("killed what was left in the cgroup", "cgroup", g.Path(), "pids", pids, "kill", w.cg.root.tree.KillMethod())
	for _, pid := range report {
		if c.reported == nil {
			c.reported = map[int]bool{}
		}
		c.reported[pid] = true
		w.emit(pubsub.Event{Kind: pubsub.Kill, Pid: pid, Wid: wid, Signal: int(syscall.SIGKILL)})
	}
	return true
}
