package arbiter

import (
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// The upgrade in place, the new image's side: an Arbiter made from the
// Handover the image before it wrote (upgrade.go), running the same
// configuration with the same sockets, watchers and workers. Run then
// adopts every worker with the reaper held (reaper_hold.go), so that the
// exits of the hand-over are routed to their watchers, and starts
// nothing the old image had not started.

// Restore makes the Arbiter that h describes, running cfg (the
// configuration the old image ran, rebuilt from its sources) on socks (its
// sockets, adopted from their fds, in cfg's order). Nothing is started:
// Run adopts the workers and resumes every watcher where it was.
func Restore(cfg *config.Config, socks []*sockets.Socket, h *Handover, opts Options) (*Arbiter, error) {
	a := newArbiter(opts)
	file := map[string]*config.Watcher{}
	for _, wc := range cfg.Watchers {
		file[strings.ToLower(wc.Name)] = wc
	}
	var ws []*Watcher
	for i := range h.Watchers {
		w, err := a.restoreWatcher(cfg, socks, file, &h.Watchers[i])
		if err != nil {
			for _, w := range ws {
				w.out.Close(0)
			}
			return nil, err
		}
		ws = append(ws, w)
	}
	for i, w := range ws {
		w.outputIn = h.Watchers[i].Output
	}
	sortWatchers(ws)
	a.restored = h
	a.snap.Store(&snapshot{watchers: ws, sockets: socks, cfg: cfg})
	return a, nil
}

// restoreWatcher makes the watcher wh describes. Its options are the
// file's watcher of that name when the file's is what it ran, so that
// reloadconfig compares against the very same; otherwise (added or set at
// run time) they are read again from its spec.
func (a *Arbiter) restoreWatcher(cfg *config.Config, socks []*sockets.Socket, file map[string]*config.Watcher, wh *WatcherHandover) (*Watcher, error) {
	spec := file[strings.ToLower(wh.Spec.Name)]
	if wh.Runtime || spec == nil || !sameSpec(spec.Spec(), wh.Spec) {
		var err error
		if spec, err = config.FromSpec(wh.Spec); err != nil {
			return nil, fmt.Errorf("hand-over: watcher %s: %w", wh.Spec.Name, err)
		}
	}
	cur := spec
	if wh.Cfg != nil {
		var err error
		if cur, err = config.FromSpec(*wh.Cfg); err != nil {
			return nil, fmt.Errorf("hand-over: watcher %s: options set at run time: %w", wh.Spec.Name, err)
		}
	}
	out, err := a.newOutput(cur, cfg)
	if err != nil {
		return nil, err
	}
	w := a.arbiterWatcher(cur, socks, out)
	w.spec, w.specSocks = spec, watcherSockets(spec, socks)
	w.runtime = wh.Runtime
	w.restoreState(wh)
	return w, nil
}

// sameSpec reports whether two specs read the same.
func sameSpec(x, y config.WatcherSpec) bool {
	return x.Name == y.Name && x.Flap == y.Flap && maps.Equal(x.Options, y.Options) && maps.Equal(x.Env, y.Env)
}

// restoreState puts the loop's state back, before its loop runs; the
// workers get their handles when Run adopts them.
func (w *Watcher) restoreState(wh *WatcherHandover) {
	w.target = wh.Target
	w.state = wh.State
	w.spawnAt = wh.SpawnAt
	w.spawnFails = wh.SpawnFails
	w.startSpawns = wh.StartSpawns
	w.crashes = wh.Crashes
	w.slotAt = wh.SlotAt
	w.deaths = wh.Deaths
	w.flapRetries = wh.FlapRetries
	w.lastFlap = wh.LastFlap
	w.retryAt = wh.RetryAt
	w.stopReason = wh.StopReason
	w.activeSince = wh.ActiveSince
	if wh.Restarts != nil || wh.SlotResets != nil {
		w.restarts.byReason, w.restarts.bySlot = map[string]uint64{}, map[int]uint64{}
		maps.Copy(w.restarts.byReason, wh.Restarts)
		maps.Copy(w.restarts.bySlot, wh.SlotResets)
	}
	w.restarts.last = wh.LastExit
	for _, ph := range wh.Workers {
		p := &worker{
			Pid: ph.Pid, Wid: ph.Wid, Started: ph.Started, expireAt: ph.ExpireAt,
			stopping: ph.Stopping, cause: ph.Cause, retiring: ph.Retiring, killAt: ph.KillAt, killed: ph.Killed,
			readyAt: ph.ReadyAt, readyBy: ph.ReadyBy, watchdogAt: ph.WatchdogAt, status: ph.Status,
		}
		p.ready.Store(ph.Ready)
		w.procs[p.Pid] = p
		w.notifyFDs = append(w.notifyFDs, adoptedNotify{pid: p.Pid, fd: ph.NotifyFD})
	}
	w.resumed = true
}

// adoptedNotify is the notify socket of an adopted worker, an inherited fd
// (-1: none), which its loop reads again once it runs.
type adoptedNotify struct {
	pid, fd int
}

// adoptWorkers registers every worker of the restored watchers with the
// reaper, which Run holds until they all are. A worker that cannot be
// adopted (not a child any more: nothing in a correct hand-over does that)
// is dropped from its watcher, which replaces it.
func (a *Arbiter) adoptWorkers() {
	for _, w := range a.Watchers() {
		for pid, p := range w.procs {
			proc, err := theReaper.adopt(pid, w.exitc)
			if err != nil {
				a.log.Error("hand-over: worker not adopted; it will be replaced", "watcher", w.name, "pid", pid, "err", err)
				delete(w.procs, pid)
				continue
			}
			theReaper.guardWith(proc.spawn, pid, a.glink)
			p.proc = proc
		}
	}
}

// resume is the first step of a restored watcher's loop: its workers'
// output is read on, what ran beside the loop in the old image (health
// checks, notify readers) runs again, and the timer is set for whatever
// the loop waits for.
func (w *Watcher) resume() {
	w.resumed = false
	// First, before the loop can spawn (a new worker's output would make
	// the kept output unrestorable), and here rather than before Run:
	// the pipes hold what the workers write meanwhile, and the endpoints
	// need not wait (2,000 pipes take tens of milliseconds). Not before
	// the hand-over is taken: until then the way back (the old binary,
	// with the same document) needs the pipes as they were.
	t0 := time.Now()
	w.adoptOutput(w.outputIn)
	w.outputIn = nil
	w.log.Debug("hand-over: output adopted", "took", time.Since(t0))
	for _, n := range w.notifyFDs {
		p := w.procs[n.pid]
		if n.fd < 0 {
			continue
		}
		f := os.NewFile(uintptr(n.fd), "notify")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil || p == nil {
			if err != nil {
				w.log.Warn("hand-over: notify socket not adopted", "pid", n.pid, "err", err)
			}
			if c != nil {
				c.Close()
			}
			continue
		}
		if uc, ok := c.(*net.UnixConn); ok {
			w.startNotify(p, uc)
		} else {
			c.Close()
		}
	}
	w.notifyFDs = nil
	w.syncHealth()
	if w.state == Starting || w.state == Active {
		w.reconcile()
		w.progress()
	}
}

// startRestoredCgroups adopts the cgroup tree and each watcher's cgroups
// as the image before left them (Run calls it instead of startCgroups). A
// tree that cannot be adopted leaves the arbiter without cgroups, and
// says why.
func (a *Arbiter) startRestoredCgroups() {
	st := a.restored.Cgroups
	if st == nil {
		st = &cgroupState{Info: CgroupInfo{Reason: "the image before had none to hand over"}}
	}
	if err := a.startCgroupsFrom(st); err != nil {
		a.log.Error("hand-over: cgroups not adopted; workers run without them", "err", err)
	}
	for _, w := range a.Watchers() {
		a.attachCgroupFrom(w, st.Watchers[w.name], slices.Collect(maps.Keys(w.procs)))
	}
}
