package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// idle is an actor's pause between two operations, in [lo, hi) divided
// by -pace.
func (r *run) idle(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return time.Duration(float64(between(rng, lo, hi)) / r.o.pace)
}

// watcherActor runs random operations on s until ctx ends; the operation
// in flight then finishes (a stopped watcher is started again), so that
// the quiet point sees every watcher active.
func (r *run) watcherActor(ctx context.Context, c *control.Client, s *watcherSpec, rng *rand.Rand) {
	for {
		if pause(ctx, r.idle(rng, 300*time.Millisecond, 2500*time.Millisecond)) != nil {
			return
		}
		r.cfgMu.RLock()
		r.watcherOp(context.WithoutCancel(ctx), c, s.name, rng)
		r.cfgMu.RUnlock()
	}
}

func (r *run) watcherOp(ctx context.Context, c *control.Client, name string, rng *rand.Rand) {
	n := r.getTarget(name)
	switch p := rng.IntN(100); {
	case p < 55:
		// incr or decr by 1 or 2, within [1, maxWorkers].
		nb := 1 + rng.IntN(2)
		cmd := "incr"
		if (rng.IntN(2) == 0 || n+nb > maxWorkers) && n-nb >= 1 {
			cmd = "decr"
		} else if n+nb > maxWorkers {
			return
		}
		want := n + nb
		if cmd == "decr" {
			want = n - nb
		}
		r.ops.inc(cmd)
		raw, err := r.call(ctx, c, cmd, map[string]any{"name": name, "nb": nb, "waiting": true})
		if err != nil {
			r.resync(ctx, c, name)
			return
		}
		r.setTarget(name, want)
		r.trace("%s target %d", name, want)
		var v struct {
			N int `json:"numprocesses"`
		}
		if json.Unmarshal(raw, &v) == nil && v.N != want {
			r.fails.add("%s %s %d from %d answered numprocesses %d, want %d", cmd, name, nb, n, v.N, want)
			r.setTarget(name, v.N)
		}
	case p < 70:
		r.ops.inc("restart")
		if _, err := r.call(ctx, c, "restart", map[string]any{"name": name, "waiting": true}); err != nil {
			r.resync(ctx, c, name)
		}
	case p < 78:
		r.ops.inc("reload")
		if _, err := r.call(ctx, c, "reload", map[string]any{"name": name, "graceful": true, "waiting": true}); err != nil {
			r.resync(ctx, c, name)
		}
	case p < 90:
		r.overlap(ctx, c, name, n, rng)
	default:
		r.ops.inc("stop+start")
		r.stopStart(ctx, c, name, between(rng, 0, 1500*time.Millisecond))
	}
}

// overlap sends a command without waiting and, while it may still run,
// another on the same watcher: they must queue or cancel cleanly, and end
// where the two in order would.
func (r *run) overlap(ctx context.Context, c *control.Client, name string, n int, rng *rand.Rand) {
	gap := between(rng, 0, 300*time.Millisecond)
	switch rng.IntN(3) {
	case 0:
		// A stop cancels a restart in progress, or waits for it.
		r.ops.inc("restart+stop+start")
		if _, err := r.call(ctx, c, "restart", map[string]any{"name": name}); err != nil {
			r.resync(ctx, c, name)
			return
		}
		_ = pause(ctx, gap)
		r.stopStart(ctx, c, name, between(rng, 0, 500*time.Millisecond))
	case 1:
		// incr then decr of as many: the decr answers the size before both.
		if n+2 > maxWorkers {
			return
		}
		r.ops.inc("incr+decr")
		if _, err := r.call(ctx, c, "incr", map[string]any{"name": name, "nb": 2}); err != nil {
			r.resync(ctx, c, name)
			return
		}
		_ = pause(ctx, gap)
		raw, err := r.call(ctx, c, "decr", map[string]any{"name": name, "nb": 2, "waiting": true})
		if err != nil {
			r.resync(ctx, c, name)
			return
		}
		var v struct {
			N int `json:"numprocesses"`
		}
		if json.Unmarshal(raw, &v) == nil && v.N != n {
			r.fails.add("incr %s 2 (not waiting) then decr 2 from %d answered numprocesses %d, want %d", name, n, v.N, n)
			r.setTarget(name, v.N)
		}
	case 2:
		// An incr during a graceful reload: after it, one more.
		if n+1 > maxWorkers {
			return
		}
		r.ops.inc("reload+incr")
		if _, err := r.call(ctx, c, "reload", map[string]any{"name": name, "graceful": true}); err != nil {
			r.resync(ctx, c, name)
			return
		}
		_ = pause(ctx, gap)
		raw, err := r.call(ctx, c, "incr", map[string]any{"name": name, "nb": 1, "waiting": true})
		if err != nil {
			r.resync(ctx, c, name)
			return
		}
		r.setTarget(name, n+1)
		var v struct {
			N int `json:"numprocesses"`
		}
		if json.Unmarshal(raw, &v) == nil && v.N != n+1 {
			r.fails.add("reload %s (not waiting) then incr 1 from %d answered numprocesses %d, want %d", name, n, v.N, n+1)
			r.setTarget(name, v.N)
		}
	}
}

// stopStart stops a watcher, checks that none of its workers is left,
// waits idle, and starts it again.
func (r *run) stopStart(ctx context.Context, c *control.Client, name string, idle time.Duration) {
	// The workers before the stop, with their start times: a pid reaped
	// and reused since is not the same worker.
	var rd procfs.Reader
	before := map[int]uint64{}
	pids, _ := r.list(ctx, c, name)
	for _, pid := range pids {
		if st, err := rd.Stat(pid); err == nil && st.PPid == r.a.Pid() {
			before[pid] = st.StartTime
		}
	}
	if _, err := r.call(ctx, c, "stop", map[string]any{"name": name, "waiting": true}); err == nil {
		// stop --waiting answers once its workers are reaped.
		if pids, err := r.list(ctx, c, name); err == nil && len(pids) != 0 {
			r.fails.add("stop %s answered, but list still shows pids %v", name, pids)
		}
		for pid, start := range before {
			if st, err := rd.Stat(pid); err == nil && st.StartTime == start {
				r.fails.add("stop %s answered, but its worker %d is still there (state %c, parent %d)", name, pid, st.State, st.PPid)
			}
		}
	}
	_ = pause(ctx, idle)
	if _, err := r.call(ctx, c, "start", map[string]any{"name": name, "waiting": true}); err != nil {
		r.resync(ctx, c, name)
	}
}

// killer SIGKILLs a random worker of a random watcher every few hundred
// milliseconds, as the OOM killer or an operator would.
func (r *run) killer(ctx context.Context, c *control.Client, rng *rand.Rand) {
	var rd procfs.Reader
	for {
		if pause(ctx, r.idle(rng, 150*time.Millisecond, 900*time.Millisecond)) != nil {
			return
		}
		name := r.specs[rng.IntN(len(r.specs))].name
		// The round's end must not cut a list short: that would look
		// like a command the arbiter never answered.
		pids, err := r.list(context.WithoutCancel(ctx), c, name)
		if err != nil || len(pids) == 0 {
			continue
		}
		slices.Sort(pids) // list's order is not the seed's
		pid := pids[rng.IntN(len(pids))]
		// Only a child of the arbiter: the pid may have been reaped and
		// reused since list answered.
		if st, err := rd.Stat(pid); err != nil || st.PPid != r.a.Pid() {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			r.kills.inc(name)
			r.trace("SIGKILL %s pid %d", name, pid)
		}
	}
}

// observer sends read-only commands, one every 0.1-0.5 s, as a dashboard
// or a monitoring script would: they must stay quick whatever the other
// actors have the watchers doing (Circus answers them behind its one
// lock).
func (r *run) observer(ctx context.Context, c *control.Client, rng *rand.Rand) {
	for {
		if pause(ctx, r.idle(rng, 100*time.Millisecond, 500*time.Millisecond)) != nil {
			return
		}
		name := r.specs[rng.IntN(len(r.specs))].name
		var props map[string]any
		cmd := []string{"stats", "dstats", "status", "list", "options", "globaloptions", "numwatchers", "stats"}[rng.IntN(8)]
		switch cmd {
		case "options":
			props = map[string]any{"name": name}
		case "stats", "status":
			if rng.IntN(2) == 0 {
				props = map[string]any{"name": name}
			}
		}
		_, _ = r.call(context.WithoutCancel(ctx), c, cmd, props)
	}
}

// reloader changes the file every few seconds, one or two watchers at a
// time (numprocesses always, and half the time an option too), and has
// the arbiter re-read it with reloadconfig or with SIGHUP.
func (r *run) reloader(ctx context.Context, c *control.Client, rng *rand.Rand) {
	for {
		if pause(ctx, r.idle(rng, 2*time.Second, 6*time.Second)) != nil {
			return
		}
		r.cfgMu.Lock()
		r.reload(context.WithoutCancel(ctx), c, rng)
		r.cfgMu.Unlock()
	}
}

func (r *run) reload(ctx context.Context, c *control.Client, rng *rand.Rand) {
	// A watcher whose reload failed before runs its old entry: the
	// arbiter applies the file's again at this reload.
	changed := maps.Clone(r.pending)
	// Distinct watchers: one picked twice could come back to the entry
	// the arbiter runs, and then nothing changes for it.
	for _, i := range rng.Perm(len(r.specs))[:min(len(r.specs), 1+rng.IntN(2))] {
		s := r.specs[i]
		n := 1 + rng.IntN(maxWorkers)
		if n == s.n {
			n = n%maxWorkers + 1
		}
		s.n = n
		switch rng.IntN(4) {
		case 0:
			s.gen++ // a new environment: every worker is replaced
		case 1:
			s.slow = !s.slow // a new graceful_timeout
		}
		changed[s.name] = true
	}
	if err := writeConfig(r.files, r.specs); err != nil {
		r.fails.add("%v", err)
		return
	}
	before := r.a.reloadLog()
	var failed []string // the failed watchers' log lines
	if rng.IntN(10) < 7 {
		r.ops.inc("reloadconfig")
		_, err := r.call(ctx, c, "reloadconfig", map[string]any{"waiting": true})
		if err != nil {
			// The arbiter logs each watcher's failure before it answers.
			failed = r.a.reloadLog().wFails[len(before.wFails):]
			if len(failed) == 0 {
				// Failed as a whole (reported): what it did is unknown.
				for name := range changed {
					r.pending[name] = true
					r.resync(ctx, c, name)
				}
				return
			}
		}
	} else {
		r.ops.inc("SIGHUP")
		t0 := time.Now()
		if err := syscall.Kill(r.a.Pid(), syscall.SIGHUP); err != nil {
			r.fails.add("SIGHUP to the arbiter: %v", err)
			return
		}
		// A SIGHUP has no reply: it is done when the arbiter logs so.
		for {
			now := r.a.reloadLog()
			if now.done > before.done {
				r.lat.add("(SIGHUP reload)", time.Since(t0), nil)
				break
			}
			if len(now.hupFails) > len(before.hupFails) {
				failed = now.wFails[len(before.wFails):]
				r.lat.add("(SIGHUP reload)", time.Since(t0), errors.New("failed"))
				line := now.hupFails[len(before.hupFails)]
				if len(failed) == 0 || !allKilledBeforeReady(failed) {
					r.fails.add("SIGHUP reload failed: %s", line)
				} else {
					r.expected.inc("SIGHUP")
				}
				r.trace("SIGHUP reload failed: %s", line)
				break
			}
			if time.Since(t0) > r.o.bound {
				r.lat.add("(SIGHUP reload)", time.Since(t0), errors.New("timeout"))
				r.fails.add("SIGHUP reload not logged as done within %v", r.o.bound)
				for name := range changed {
					r.resync(ctx, c, name)
				}
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for name := range changed {
		if slices.ContainsFunc(failed, func(line string) bool { return strings.Contains(line, "watcher="+name+" ") }) {
			r.pending[name] = true
			r.resync(ctx, c, name)
			continue
		}
		delete(r.pending, name)
		r.setTarget(name, r.spec(name).n)
	}
	r.trace("reload done: changed %v, failed %d, targets %v", slices.Sorted(maps.Keys(changed)), len(failed), r.targets())
}

// spec returns the watcher called name.
func (r *run) spec(name string) *watcherSpec {
	for _, s := range r.specs {
		if s.name == name {
			return s
		}
	}
	panic("BUG: no watcher " + name)
}

// killedBeforeReady is how the arbiter says that a new worker of a reload
// (or of an incr, a start) died of SIGKILL before it reported ready. The
// reload is then abandoned with an error, as documented; the killer does
// that, so it is expected.
const killedBeforeReady = "exited (code -9) before it was ready"

// allKilledBeforeReady reports whether every line of an error (one per
// watcher, as errors.Join writes them) is a worker killed before it was
// ready.
func allKilledBeforeReady(lines []string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) != "" && !strings.Contains(l, killedBeforeReady) {
			return false
		}
	}
	return true
}

// describe names the pids of a watcher for a failure message.
func describe(pids []int) string {
	if len(pids) > 8 {
		return fmt.Sprintf("%v...", pids[:8])
	}
	return fmt.Sprint(pids)
}
