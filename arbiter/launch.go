package arbiter

import (
	"fmt"
	"math/rand/v2"
	"net"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Spawning: a worker's fork and exec run beside the watcher's loop, which
// hears how each went (handleLaunched); until then its slot counts as
// live.

// spawnOne starts one worker in slot wid, after before_spawn if the
// watcher has one. It reports false when nothing was started and
// reconcile should stop for now.
func (w *Watcher) spawnOne(wid int) bool {
	if w.hookThen(hookBeforeSpawn, hookDone{step: stepSpawn, wid: wid}, "CIRCUS_WID="+fmt.Sprint(wid)) {
		w.spawning[wid] = true
		return true
	}
	return w.spawnNow(wid)
}

// spawnNow starts one worker in slot wid: the fork and exec happen on a
// goroutine of their own, since a child may block before its exec (a
// working_dir on a hung mount, a slow cgroup migration), and the loop
// never waits; the slot counts as live until handleLaunched hears how it
// went. A failure is retried later (see spawnFailed).
func (w *Watcher) spawnNow(wid int) bool {
	cfg, conn, err := w.notifyLaunch()
	if err != nil {
		w.spawnFailed(wid, err)
		return false
	}
	in := &inflight{started: time.Now(), ticket: &spawnTicket{}}
	w.launching[wid] = in
	var cg spawnCgroups
	var joined func(pid int, started bool)
	cg.joins, joined = w.cg.prepare(cfg, wid)
	if w.cg != nil {
		cg.noClone3 = w.cg.root.noClone3 || w.cg.killed
	}
	cg.ticket, cg.guard = in.ticket, w.guard
	socks, out, l, base := w.socks, w.out, w.launch, w.cfg
	w.launches.Go(func() {
		p, err := l.launch(cfg, socks, wid, cg, w.exitc, out)
		if err != nil && conn != nil {
			conn.Close()
			conn = nil
		}
		w.launchc <- launched{wid: wid, p: p, conn: conn, err: err, joined: joined, cfg: base}
	})
	return true
}

// inflight is a spawn under way.
type inflight struct {
	started time.Time
	ticket  *spawnTicket
	killed  bool // SIGKILL sent to its child (killStuck)
}

// killStuck ends the spawns of a stopping watcher that have been under
// way for graceful_timeout: their children are stuck before their exec (a
// working directory on a hung mount, a frozen cgroup) and would hold the
// stop for as long as that lasts. A child that dies so is reaped as a
// worker that died at once.
func (w *Watcher) killStuck(now time.Time) {
	if w.state != Stopping {
		return
	}
	for wid, in := range w.launching {
		if in.killed || now.Before(in.started.Add(w.cfg.GracefulTimeout)) {
			continue
		}
		in.killed = true
		if theReaper.killSpawn(in.ticket) {
			w.log.Warn("spawn stuck before exec: killed", "wid", wid, "for", now.Sub(in.started).Round(time.Millisecond))
		}
	}
}

// stuckNext is when killStuck is next due, or zero.
func (w *Watcher) stuckNext() time.Time {
	var next time.Time
	if w.state != Stopping {
		return next
	}
	for _, in := range w.launching {
		if at := in.started.Add(w.cfg.GracefulTimeout); !in.killed && (next.IsZero() || at.Before(next)) {
			next = at
		}
	}
	return next
}

// launched is how a spawn of slot wid went.
type launched struct {
	wid  int
	p    proc
	conn *net.UnixConn // its notify socket, with ready = notify
	err  error
	// joined tells the watcher's cgroups, on the loop, how it went.
	joined func(pid int, started bool)
	cfg    *config.Watcher // the options it was started with
}

// handleLaunched takes in a worker whose spawn has ended, or retries the
// slot later. A worker that comes when the watcher no longer wants it (a
// stop overtook the start) is stopped at once.
func (w *Watcher) handleLaunched(l launched) {
	defer w.progress()
	delete(w.launching, l.wid)
	if l.err != nil {
		l.joined(0, false)
		w.spawnFailed(l.wid, l.err)
		if w.state == Stopping && w.empty() {
			w.finishStop()
		}
		return
	}
	l.joined(l.p.Pid(), true)
	w.startSpawns++
	now := time.Now()
	w.transient, w.transErr = 0, nil
	if !w.cfg.Ready.Waits() {
		w.spawnFails = 0 // otherwise once the worker is ready
	}
	proc := &worker{Pid: l.p.Pid(), Wid: l.wid, Started: now, proc: l.p}
	w.beginReadiness(proc, now)
	if l.conn != nil {
		w.startNotify(proc, l.conn)
	}
	if w.cfg.MaxAge > 0 {
		age := w.cfg.MaxAge
		if w.cfg.MaxAgeVariance > 0 {
			age += rand.N(w.cfg.MaxAgeVariance)
		}
		proc.expireAt = now.Add(age)
	}
	w.procs[proc.Pid] = proc
	w.startHealth(proc)
	w.log.Info("spawned", "pid", proc.Pid, "wid", l.wid)
	w.emit(pubsub.Event{Kind: pubsub.Spawn, Pid: proc.Pid, Wid: l.wid, Time: now})
	if w.hookThen(hookAfterSpawn, hookDone{step: stepSpawned, pid: proc.Pid}, workerVars(proc)...) {
		w.afterSpawns++
	}
	st, died := w.early[proc.Pid]
	delete(w.early, proc.Pid)
	if len(w.launching) == 0 {
		for pid := range w.early {
			w.log.Warn("exit of an unknown worker", "pid", pid)
		}
		clear(w.early)
	}
	if died {
		// It died before the loop heard it was born.
		w.handleExit(st)
		return
	}
	// Not wanted any more: a stop overtook its start, a reload it was
	// started for was abandoned (its options are gone), or the pool
	// shrank meanwhile. It goes, rather than a worker that serves.
	if w.state != Starting && w.state != Active || l.cfg != w.cfg || w.live() > w.target {
		w.stopProc(proc)
		return
	}
	w.reconcile()
}

// empty reports whether no worker is left, nor on its way.
func (w *Watcher) empty() bool { return len(w.procs) == 0 && len(w.launching) == 0 }

// freeWid is Circus's wid: the smallest slot number no worker holds.
func (w *Watcher) freeWid() int {
	used := w.usedSlots()
	wid := 1
	for used[wid] {
		wid++
	}
	return wid
}

// usedSlots are the slots of the workers and of the spawns under way.
func (w *Watcher) usedSlots() map[int]bool {
	used := make(map[int]bool, len(w.procs)+len(w.spawning)+len(w.launching))
	for _, p := range w.procs {
		used[p.Wid] = true
	}
	for wid := range w.spawning {
		used[wid] = true
	}
	for wid := range w.launching {
		used[wid] = true
	}
	return used
}
