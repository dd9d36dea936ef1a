package arbiter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// State is a watcher's state, named as Circus names it.
type State int

// A watcher's states. Stopped is the zero value.
const (
	Stopped State = iota
	Starting
	Active
	Stopping
)

func (s State) String() string {
	switch s {
	case Starting:
		return "starting"
	case Active:
		return "active"
	case Stopping:
		return "stopping"
	}
	return "stopped"
}

// ErrStopped is returned to a Start that the watcher's own decision to stop
// (flapping, spawn failures) or a Stop command overtook.
var ErrStopped = errors.New("watcher stopped")

// Watcher is one pool of workers running the same command. Its loop
// goroutine owns every field below the channels; its methods send requests
// to that loop and may be called from any goroutine.
type Watcher struct {
	name   string
	log    *slog.Logger
	pub    Publisher
	launch launcher
	out    *logs.Output // nil only in tests of the loop's logic

	reqc  chan func()
	exitc chan exitStatus
	quit  chan struct{}
	done  chan struct{}

	// Owned by the Arbiter's Run goroutine: the config and sockets last
	// applied, against which a reload compares.
	spec      *config.Watcher
	specSocks []*sockets.Socket
	runtime   bool // added by a command, not read from the file

	// cur is cfg for other goroutines (Config): the loop stores it after
	// every step that may have replaced cfg.
	cur atomic.Pointer[config.Watcher]

	// Owned by the loop.
	cfg          *config.Watcher
	socks        []*sockets.Socket
	target       int // numprocesses, changed at run time by Incr
	reload       *reloadOp
	queued       []func() // reloads waiting for the running one
	scaleWaiters []chan<- error
	killWaiters  []killWait
	state        State
	procs        map[int]*worker
	startWaiters []chan<- error
	// firstWaiters are answered as startWaiters are, and also at the
	// first failed spawn, while the watcher retries on (startAsync).
	firstWaiters []chan<- error
	stopWaiters  []chan<- error
	restartAfter bool                // a Start arrived while stopping
	final        bool                // the arbiter is shutting down: no more starts
	laterExits   []exitStatus        // reaped while a hook was waited for, handled after the step
	spawnAt      time.Time           // the next spawn not before (warmup_delay, spawn-failure backoff)
	spawnFails   int                 // consecutive failed spawns
	deaths       map[int][]time.Time // unexpected deaths by wid, within the flapping window
	flapRetries  int
	lastFlap     time.Time
	retryAt      time.Time // restart after flapping at this time; zero: none
	timer        *time.Timer
	cg           *watcherCgroup    // its cgroups (cgroup.go); nil in tests of the loop
	hooks        hookRunner        // runs the hooks.* commands (hooks.go)
	healthc      chan healthResult // from the check goroutines
	checks       sync.WaitGroup    // the check, notify and sampling goroutines, waited for when the loop ends
	notifyc      chan notifyMsg    // from the workers' notify readers
	limitc       chan limitSample  // from the sampling goroutine; room for the one in flight
	sampling     bool              // a sampling goroutine is in flight
	limitAt      time.Time         // the next sampling not before
}

func newWatcher(cfg *config.Watcher, socks []*sockets.Socket, log *slog.Logger, pub Publisher, l launcher) *Watcher {
	w := &Watcher{
		name:    cfg.Name,
		log:     log.With("watcher", cfg.Name),
		pub:     pub,
		launch:  l,
		socks:   socks,
		reqc:    make(chan func()),
		exitc:   make(chan exitStatus, 256),
		healthc: make(chan healthResult, 64),
		notifyc: make(chan notifyMsg, 64),
		limitc:  make(chan limitSample, 1),
		quit:    make(chan struct{}),
		done:    make(chan struct{}),
		cfg:     cfg,
		target:  cfg.NumProcesses,
		procs:   make(map[int]*worker),

		spec:      cfg,
		specSocks: socks,
	}
	w.cur.Store(cfg)
	return w
}

// Config returns the watcher's options as its loop last saw them, without
// waiting for the loop: for checks that must not block. numprocesses is
// the configured one; Options has the size resized since.
func (w *Watcher) Config() *config.Watcher { return w.cur.Load() }

// Name returns the watcher's name as configured.
func (w *Watcher) Name() string { return w.name }

// run is the watcher's loop. It returns once quit is closed and no worker is
// left.
func (w *Watcher) run() {
	defer close(w.done)
	// Every worker is gone when the loop ends, so every check has been
	// told to end.
	defer w.checks.Wait()
	defer w.hooks.wait()
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	quit := w.quit
	for {
		select {
		case f := <-w.reqc:
			f()
		case st := <-w.exitc:
			w.handleExit(st)
		case r := <-w.healthc:
			w.handleHealth(r)
		case m := <-w.notifyc:
			w.handleNotify(m)
		case s := <-w.limitc:
			w.handleLimits(s)
		case <-w.timer.C:
			w.tick()
		case <-quit:
			quit = nil
		}
		for len(w.laterExits) > 0 {
			st := w.laterExits[0]
			w.laterExits = w.laterExits[1:]
			w.handleExit(st)
		}
		if w.cur.Load() != w.cfg {
			w.cur.Store(w.cfg)
			w.syncHealth()
		}
		if quit == nil && len(w.procs) == 0 {
			return
		}
		w.rearm()
	}
}

// do runs f on the loop and waits until it has run.
func (w *Watcher) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case w.reqc <- func() { f(); close(ran) }:
	case <-w.done:
		return fmt.Errorf("watcher %s: %w", w.name, ErrStopped)
	case <-ctx.Done():
		return ctx.Err()
	}
	<-ran
	return nil
}

// await sends f a reply channel on the loop and waits for the reply.
func (w *Watcher) await(ctx context.Context, f func(chan<- error)) error {
	reply := make(chan error, 1)
	if err := w.do(ctx, func() { f(reply) }); err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Start starts the watcher's workers and returns when all numprocesses of
// them have been spawned (the watcher is active), or with an error if the
// watcher stopped itself meanwhile. Starting an active watcher does nothing.
func (w *Watcher) Start(ctx context.Context) error {
	return w.await(ctx, func(reply chan<- error) { w.beginStart(reply, true) })
}

// Stop stops every worker gracefully (stop_signal to its process group, then
// SIGKILL after graceful_timeout) and returns when all have been reaped.
func (w *Watcher) Stop(ctx context.Context) error {
	return w.await(ctx, func(reply chan<- error) {
		w.retryAt = time.Time{}
		w.restartAfter = false
		w.stopWaiters = append(w.stopWaiters, reply)
		w.beginStop("stop requested")
	})
}

// Info returns the watcher's state and a snapshot of its workers.
func (w *Watcher) Info(ctx context.Context) (State, []ProcessInfo, error) {
	var (
		st    State
		procs []ProcessInfo
	)
	err := w.do(ctx, func() {
		st = w.state
		for _, p := range w.procs {
			procs = append(procs, p.info())
		}
	})
	return st, procs, err
}

// Status is a snapshot of a watcher, safe to keep.
type Status struct {
	State  State
	Target int           // numprocesses, as resized since the configuration
	Procs  []ProcessInfo // ordered by wid
	// Sockets are those its workers inherit, in fd order.
	Sockets []*sockets.Socket
}

// Status returns the watcher's state, target size, workers and sockets, read
// together on its loop: for displays that must show a consistent watcher.
func (w *Watcher) Status(ctx context.Context) (Status, error) {
	var st Status
	err := w.do(ctx, func() {
		st = Status{State: w.state, Target: w.target, Sockets: slices.Clone(w.socks)}
		for _, p := range w.procs {
			st.Procs = append(st.Procs, p.info())
		}
	})
	slices.SortFunc(st.Procs, func(a, b ProcessInfo) int { return cmp.Compare(a.Wid, b.Wid) })
	return st, err
}

func (w *Watcher) emit(ev pubsub.Event) {
	if w.pub == nil {
		return
	}
	ev.Watcher = w.name
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	w.pub.Publish(ev)
}

// startAsync begins a start and returns the channel its reply comes on:
// when the watcher is active or its start failed, or, with first, also at
// its first failed spawn (errRetrying; the watcher retries on, as usual).
// first is what the arbiter waits for before it starts watchers of lower
// priority, as systemd waits for a unit's start job, and not for its
// restarts, before the units ordered after it.
func (w *Watcher) startAsync(ctx context.Context, first bool) (<-chan error, error) {
	reply := make(chan error, 1)
	err := w.do(ctx, func() { w.beginStartFor(reply, true, first) })
	return reply, err
}

// errRetrying is what a first waiter gets when a spawn failed and the
// watcher retries it.
var errRetrying = errors.New("not started yet, retrying")

func (w *Watcher) beginStart(reply chan<- error, commanded bool) {
	w.beginStartFor(reply, commanded, false)
}

// beginStartFor is beginStart, with reply a first waiter when first is set.
func (w *Watcher) beginStartFor(reply chan<- error, commanded, first bool) {
	if w.final {
		// The arbiter is shutting down: a start now (a plugin's restart,
		// a console click, a flapping retry) would leave workers that the
		// loop, told to end, waits on for ever.
		if reply != nil {
			reply <- fmt.Errorf("watcher %s: %w", w.name, ErrShutdown)
		}
		return
	}
	if commanded {
		w.flapRetries = 0
		w.retryAt = time.Time{}
	}
	switch w.state {
	case Active:
		if reply != nil {
			reply <- nil
		}
		return
	case Stopping:
		w.restartAfter = true
	case Stopped:
		if !w.beforeStart(reply) {
			return
		}
		w.state = Starting
		w.spawnAt = time.Time{}
		w.spawnFails = 0
		w.deaths = nil
		w.log.Info("starting", "numprocesses", w.target)
	}
	switch {
	case reply == nil:
	case first:
		w.firstWaiters = append(w.firstWaiters, reply)
	default:
		w.startWaiters = append(w.startWaiters, reply)
	}
	w.reconcile()
}

// replyStart answers every start waiter with err.
func (w *Watcher) replyStart(err error) {
	for _, r := range w.startWaiters {
		r <- err
	}
	for _, r := range w.firstWaiters {
		r <- err
	}
	w.startWaiters, w.firstWaiters = nil, nil
}

func (w *Watcher) becomeActive() {
	if !w.afterStart() {
		return
	}
	w.state = Active
	w.log.Info("started", "numprocesses", len(w.procs))
	w.emit(pubsub.Event{Kind: pubsub.Start})
	w.replyStart(nil)
}

// beginStop moves the watcher to stopping and sends every worker its stop
// signal; the stop completes in handleExit when the last worker is reaped.
func (w *Watcher) beginStop(reason string) {
	w.replyStart(fmt.Errorf("watcher %s: %w: %s", w.name, ErrStopped, reason))
	if w.state == Stopped && len(w.procs) == 0 {
		w.finishStop()
		return
	}
	if w.state != Stopping {
		w.log.Info("stopping", "reason", reason)
		w.beforeStop()
	}
	w.state = Stopping
	for _, p := range w.procs {
		if !p.stopping {
			w.stopProc(p)
		}
	}
	if len(w.procs) == 0 {
		w.finishStop()
	}
}

func (w *Watcher) finishStop() {
	w.cgroupStopped()
	if w.state != Stopped {
		w.state = Stopped
		w.log.Info("stopped")
		w.emit(pubsub.Event{Kind: pubsub.Stop})
		w.afterStop()
	}
	for _, r := range w.stopWaiters {
		r <- nil
	}
	w.stopWaiters = nil
	w.progress()
	if w.restartAfter {
		w.restartAfter = false
		w.beginStart(nil, false)
	}
}

// stopProc sends a worker its stop signal and arms the SIGKILL deadline.
func (w *Watcher) stopProc(p *worker) { w.stopProcWith(p, w.cfg.StopSignal) }

// stopProcWith is stopProc with sig in place of stop_signal (0: SIGTERM).
func (w *Watcher) stopProcWith(p *worker, sig syscall.Signal) {
	now := time.Now()
	p.stopping = true
	w.endWatch(p)
	p.killAt = now.Add(w.cfg.GracefulTimeout)
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	var kids []int
	if w.cfg.StopChildren {
		// Listed before the group signal: a worker that dies of it at once
		// leaves a zombie whose children can no longer be listed.
		kids = childrenOf(p.Pid)
	}
	w.signal(p, sig)
	// Children still in the group were signalled with it; this reaches
	// those that left it.
	for _, kid := range kids {
		if err := syscall.Kill(kid, sig); err == nil {
			w.emit(pubsub.Event{Kind: pubsub.Kill, Pid: kid, Wid: p.Wid, Signal: int(sig)})
		}
	}
	if w.cfg.GracefulTimeout <= 0 {
		w.escalate(p)
	}
}

// signal sends sig to a worker's process group, which reaches its
// descendants too; to the worker alone if it has left its group.
func (w *Watcher) signal(p *worker, sig syscall.Signal) {
	defer w.afterSignal(p, sig)
	if !w.beforeSignal(p, sig) {
		return
	}
	err := p.proc.SignalGroup(sig)
	if err != nil {
		err = p.proc.Signal(sig)
	}
	if err != nil && !errors.Is(err, os.ErrProcessDone) {
		w.log.Warn("signal failed", "pid", p.Pid, "signal", sig, "err", err)
		return
	}
	w.log.Debug("signalled", "pid", p.Pid, "signal", sig)
	w.emit(pubsub.Event{Kind: pubsub.Kill, Pid: p.Pid, Wid: p.Wid, Signal: int(sig)})
}

func (w *Watcher) escalate(p *worker) {
	p.killed = true
	w.log.Warn("escalating to SIGKILL", "pid", p.Pid, "graceful_timeout", w.cfg.GracefulTimeout)
	w.signal(p, syscall.SIGKILL)
}

// retire replaces p: it is retired first, so that reconcile spawns the
// replacement before p has even been signalled, which happens once the
// replacement is ready (handOver).
func (w *Watcher) retire(p *worker) {
	p.retiring = true
	w.endHealth(p)
	w.reconcile()
	w.handOver()
}

// live counts the workers that are not on their way out.
func (w *Watcher) live() int {
	n := 0
	for _, p := range w.procs {
		if !p.stopping && !p.retiring {
			n++
		}
	}
	return n
}

// reconcile brings the number of live workers to numprocesses: spawning
// while starting (paced by warmup_delay) or, once active, at once to replace
// a dead worker; stopping the oldest when there are too many.
func (w *Watcher) reconcile() {
	if w.state != Starting && w.state != Active {
		return
	}
	target := w.target
	for w.live() < target {
		if w.state == Active && !w.cfg.Respawn && w.reload == nil {
			break // a reload replaces workers even so
		}
		if time.Now().Before(w.spawnAt) {
			return // the timer comes back here
		}
		if !w.spawnOne() {
			return
		}
		if w.state == Starting && w.cfg.WarmupDelay > 0 && w.live() < target {
			w.spawnAt = time.Now().Add(w.cfg.WarmupDelay)
		}
	}
	for w.live() > target {
		var oldest *worker
		for _, p := range w.procs {
			// Ties (one clock tick) go to the lower slot, started first.
			if !p.stopping && !p.retiring && (oldest == nil || p.Started.Before(oldest.Started) ||
				p.Started.Equal(oldest.Started) && p.Wid < oldest.Wid) {
				oldest = p
			}
		}
		w.stopProc(oldest)
	}
	if w.state == Starting && w.allReady() {
		w.becomeActive()
	}
}

// spawnOne starts one worker. A failure is retried with a growing pause
// (never the busy loop Circus falls into with max_retry = -1), and after
// max_retry failures in a row the watcher stops.
func (w *Watcher) spawnOne() bool {
	wid := w.freeWid()
	if !w.beforeSpawn(wid) {
		return false
	}
	cfg, conn, err := w.notifyLaunch()
	var p proc
	if err == nil {
		p, err = w.launch.launch(cfg, w.socks, wid, w.exitc, w.out)
		if err != nil && conn != nil {
			conn.Close()
		}
	}
	now := time.Now()
	if err != nil {
		w.log.Error("spawn failed", "wid", wid, "err", err, "attempt", w.spawnFails+1)
		w.spawnFailed(err)
		return false
	}
	if !w.cfg.Ready.Waits() {
		w.spawnFails = 0 // otherwise once the worker is ready
	}
	proc := &worker{Pid: p.Pid(), Wid: wid, Started: now, proc: p}
	w.beginReadiness(proc, now)
	if conn != nil {
		w.startNotify(proc, conn)
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
	w.log.Info("spawned", "pid", proc.Pid, "wid", wid)
	w.emit(pubsub.Event{Kind: pubsub.Spawn, Pid: proc.Pid, Wid: wid, Time: now})
	return w.afterSpawn(proc)
}

// spawnFailed counts a spawn that failed (err) and pauses the next, with a
// growing pause (never the busy loop Circus falls into with max_retry =
// -1); after max_retry failures in a row it abandons a reload in progress,
// or else stops the watcher.
func (w *Watcher) spawnFailed(err error) {
	w.spawnFails++
	if w.cfg.MaxRetry >= 0 && w.spawnFails > w.cfg.MaxRetry {
		if w.abortReload(err) {
			return
		}
		w.log.Error("giving up", "reason", "spawn failed", "attempts", w.spawnFails)
		w.beginStop(fmt.Sprintf("spawn failed %d times: %v", w.spawnFails, err))
		return
	}
	for _, r := range w.firstWaiters {
		r <- fmt.Errorf("watcher %s: %w: %w", w.name, errRetrying, err)
	}
	w.firstWaiters = nil
	w.spawnAt = time.Now().Add(min(100*time.Millisecond<<min(w.spawnFails-1, 6), 5*time.Second))
}

// freeWid is Circus's wid: the smallest slot number no worker holds.
func (w *Watcher) freeWid() int {
	used := make(map[int]bool, len(w.procs))
	for _, p := range w.procs {
		used[p.Wid] = true
	}
	wid := 1
	for used[wid] {
		wid++
	}
	return wid
}

func (w *Watcher) handleExit(st exitStatus) {
	p := w.procs[st.pid]
	if p == nil {
		w.log.Warn("exit of an unknown worker", "pid", st.pid)
		return
	}
	delete(w.procs, st.pid)
	w.endWatch(p)
	// Whatever the worker left in its group is already gone: the reaper
	// killed it before reaping the worker, while its pid was still its own.
	p.proc.Release()
	w.cgroupExited(p)
	code := exitCode(st.status)
	w.emit(pubsub.Event{Kind: pubsub.Reap, Pid: p.Pid, Wid: p.Wid, ExitCode: code})
	w.reapHooks(p, st)
	if p.stopping {
		w.log.Info("reaped", "pid", p.Pid, "exit_code", code)
	} else {
		w.log.Warn("worker died", "pid", p.Pid, "wid", p.Wid, "exit_code", code, "age", time.Since(p.Started).Round(time.Millisecond))
		if !p.ready.Load() && !p.retiring && (w.reload == nil || !slices.Contains(w.reload.old, p.Pid)) {
			// A new worker that died before it was ready did not start:
			// during a reload the reload is abandoned and the old workers
			// stay; otherwise it is a failed spawn, retried after a pause
			// and counted against max_retry, as a ready_timeout is, not a
			// crash respawned at once for ever (a death a second is below
			// the flapping limit).
			p.stopping = true // it is gone: nothing to signal
			w.notReady(p, fmt.Errorf("pid %d exited (code %d) before it was ready", p.Pid, code))
			w.progress()
			return
		}
		if w.flapped(p.Wid) {
			return
		}
		if w.state == Active && !w.cfg.Respawn && len(w.procs) == 0 {
			w.state = Stopping
			w.finishStop()
			return
		}
	}
	if w.state == Stopping {
		if len(w.procs) == 0 {
			w.finishStop()
		}
		w.progress()
		return
	}
	w.reconcile()
	w.progress()
}

// flapped records an unexpected death of the worker in slot wid and, when
// that slot died too often within the window, stops the watcher and
// schedules a retry. Deaths are counted per slot, so a pool that loses many
// workers at once (an OOM kill, a pkill) is not taken for a crash loop,
// while a program that cannot stay up trips the limit in every slot. With
// one worker this is Circus's Flapping plugin exactly. Deaths the arbiter
// caused (stop, restart, max_age) never count (unlike Circus #965).
func (w *Watcher) flapped(wid int) bool {
	c := w.cfg
	if c.FlapAttempts <= 0 || w.state == Stopping {
		return false
	}
	now := time.Now()
	if w.deaths == nil {
		w.deaths = map[int][]time.Time{}
	}
	keep := w.deaths[wid][:0]
	for _, t := range w.deaths[wid] {
		if now.Sub(t) < c.FlapWindow {
			keep = append(keep, t)
		}
	}
	w.deaths[wid] = append(keep, now)
	if len(w.deaths[wid]) < c.FlapAttempts {
		return false
	}
	w.deaths = nil
	// A watcher that ran a whole window after its last retry starts a new
	// episode rather than using up its retries.
	if now.Sub(w.lastFlap) > c.FlapRetryIn+c.FlapWindow {
		w.flapRetries = 0
	}
	w.lastFlap = now
	w.flapRetries++
	reason := fmt.Sprintf("%d deaths within %s", c.FlapAttempts, c.FlapWindow)
	if c.FlapMaxRetry >= 0 && w.flapRetries > c.FlapMaxRetry {
		reason += fmt.Sprintf("; gave up after %d retries", c.FlapMaxRetry)
		w.log.Error("flapping: stopped for good", "reason", reason)
		w.emit(pubsub.Event{Kind: pubsub.Flapping, Reason: reason})
		w.beginStop("flapping: " + reason)
		return true
	}
	w.log.Error("flapping: stopped", "reason", reason, "retry_in", c.FlapRetryIn, "retry", w.flapRetries, "max_retry", c.FlapMaxRetry)
	w.emit(pubsub.Event{Kind: pubsub.Flapping, Reason: reason})
	w.beginStop("flapping: " + reason)
	w.retryAt = now.Add(c.FlapRetryIn)
	return true
}

// tick handles every deadline that has passed: SIGKILL escalation, max_age
// recycling, the flapping retry and paced spawns.
func (w *Watcher) tick() {
	now := time.Now()
	for _, p := range w.procs {
		switch {
		case p.stopping && !p.killed && !now.Before(p.killAt):
			w.escalate(p)
		case !p.stopping && !p.retiring && !p.expireAt.IsZero() && !now.Before(p.expireAt):
			w.log.Info("recycling", "pid", p.Pid, "reason", "max_age", "age", now.Sub(p.Started).Round(time.Second))
			w.retire(p)
		}
	}
	w.readinessDeadlines(now)
	w.startSampling(now)
	w.pollOOM(now)
	w.sweepDead(now)
	if w.state == Stopped && !w.retryAt.IsZero() && !now.Before(w.retryAt) {
		w.retryAt = time.Time{}
		w.log.Info("flapping: retrying", "retry", w.flapRetries)
		w.beginStart(nil, false)
	}
	w.reconcile()
	w.progress()
}

// rearm sets the timer to the earliest deadline the loop is waiting for.
func (w *Watcher) rearm() {
	var next time.Time
	earlier := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	if (w.state == Starting || w.state == Active) && w.live() < w.target {
		earlier(w.spawnAt)
	}
	if w.reload != nil {
		earlier(w.reload.pauseUntil)
	}
	for _, p := range w.procs {
		if p.stopping && !p.killed {
			earlier(p.killAt)
		} else if !p.stopping && !p.retiring {
			earlier(p.expireAt)
		}
		earlier(w.readinessNext(p))
	}
	earlier(w.limitNext())
	earlier(w.oomNext())
	earlier(w.sweepNext())
	if w.state == Stopped {
		earlier(w.retryAt)
	}
	w.timer.Stop()
	if !next.IsZero() {
		w.timer.Reset(max(time.Until(next), 0))
	}
}
