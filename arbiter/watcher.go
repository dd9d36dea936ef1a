package arbiter

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// State is a watcher's state, named as Circus names it. The loop's finer
// state (a hook it waits for, a backoff, a crash loop's pause, a flapping
// retry) is Status.Detail; see lifecycle.go for the whole machine.
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
	guard  *guardLink   // its arbiter's guardian, for its workers, hooks and checks

	reqc  chan request
	exitc chan exitStatus
	hookc chan hookDone // results of the hooks the loop goes on after
	// launchc carries the end of each spawn, which runs on a goroutine
	// of its own (launches); room for as many as the loop starts at once.
	launchc  chan launched
	launches sync.WaitGroup
	quit     chan struct{}
	done     chan struct{}

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
	queued       []reloadReq // reloads waiting for the running one
	scaleWaiters []chan<- error
	killWaiters  []killWait
	state        State
	procs        map[int]*worker
	// startWaiters are answered when the watcher is active, when it
	// stops, and at its first failed spawn while it retries on: a start
	// answers with its first attempt, as systemctl start does, not with
	// the retries that follow.
	startWaiters []chan<- error
	stopWaiters  []chan<- error
	restartAfter bool // a Start arrived while stopping
	final        bool // the arbiter is shutting down: no more starts
	// gate is the hook a watcher-wide step waits for (before_start,
	// after_start, before_stop), 0 for none; gateSeq tells its result
	// from that of a gate since given up (a stop overtook a start).
	gate    hookStep
	gateSeq uint64
	// spawning holds the slots whose before_spawn hook runs: they count
	// as live, so reconcile does not spawn them twice.
	spawning    map[int]bool
	launching   map[int]*inflight  // the slots whose spawn runs
	early       map[int]exitStatus // exits of workers whose spawn the loop has not heard the end of
	afterSpawns int                // after_spawn hooks running: a start is not done before they are
	startSpawns int                // workers spawned since the watcher last started
	hooksOut    int                // hook results the loop still expects on hookc
	spawnAt     time.Time          // the next spawn not before (warmup_delay, backoff, crash-loop pause)
	spawnFails  int                // consecutive failed spawns, toward max_retry
	transient   int                // consecutive spawns failed for a passing reason (never toward max_retry)
	transErr    error              // the last such failure
	crashes     map[int]int
	slotAt      map[int]time.Time   // a crash-looping slot's next spawn not before
	deaths      map[int][]time.Time // unexpected deaths by wid, within the flapping window
	flapRetries int
	lastFlap    time.Time
	retryAt     time.Time // restart after flapping at this time; zero: none
	stopReason  string    // why the watcher stopped itself, for Detail
	activeSince time.Time // when it last became active
	restarts    restarts  // deaths counted as restarts (restarts.go)
	timer       *time.Timer
	cg          *watcherCgroup    // its cgroups (cgroup.go); nil in tests of the loop
	hooks       hookRunner        // runs the hooks.* commands (hooks.go)
	healthc     chan healthResult // from the check goroutines
	checks      sync.WaitGroup    // the check, notify and sampling goroutines, waited for when the loop ends
	notifyc     chan notifyMsg    // from the workers' notify readers
	limitc      chan limitSample  // from the sampling goroutine; room for the one in flight
	sampling    bool              // a sampling goroutine is in flight
	limitAt     time.Time         // the next sampling not before

	// Autoscaling (autoscale.go): the loop owns scale, queue and
	// queueErr; queuec brings the sampler's readings, the latest only;
	// the loop publishes the rest for the sampler after each step.
	scale      *scaler
	queue      queueSample
	queueErr   string
	queuec     chan queueSample
	scaleOn    atomic.Bool // sample it: autoscaled, starting or active
	scaleZero  atomic.Bool // ... and its pool is empty
	scaleSpare atomic.Bool // ... or above its min
	scaleSocks atomic.Pointer[[]*sockets.Socket]
	kickQueues func() // tells the sampler a pool has emptied; nil in tests of the loop

	// resumed is set on a watcher restored from a hand-over (restore.go)
	// until its loop has run resume; notifyFDs are its workers' inherited
	// notify sockets, until then.
	resumed   bool
	notifyFDs []adoptedNotify
	// outputIn is its workers' output as handed over, until the loop's
	// resume reads on from it.
	outputIn *OutputHandover

	// criticalc is the arbiter's, where a critical watcher that gives up
	// says so (critical.go); nil in tests of the loop.
	criticalc chan<- *CriticalError
}

func newWatcher(cfg *config.Watcher, socks []*sockets.Socket, log *slog.Logger, pub Publisher, l launcher) *Watcher {
	w := &Watcher{
		name:      cfg.Name,
		log:       log.With("watcher", cfg.Name),
		pub:       pub,
		launch:    l,
		socks:     socks,
		reqc:      make(chan request),
		exitc:     make(chan exitStatus, 256),
		hookc:     make(chan hookDone, 16),
		launchc:   make(chan launched),
		healthc:   make(chan healthResult, 64),
		notifyc:   make(chan notifyMsg, 64),
		limitc:    make(chan limitSample, 1),
		queuec:    make(chan queueSample, 1),
		quit:      make(chan struct{}),
		done:      make(chan struct{}),
		cfg:       cfg,
		target:    cfg.NumProcesses,
		procs:     make(map[int]*worker),
		spawning:  make(map[int]bool),
		launching: make(map[int]*inflight),
		early:     make(map[int]exitStatus),

		spec:      cfg,
		specSocks: socks,
	}
	w.cur.Store(cfg)
	w.adoptAutoscale()
	return w
}

// Config returns the watcher's options as its loop last saw them, without
// waiting for the loop: for checks that must not block. numprocesses is
// the configured one; Options has the size resized since.
func (w *Watcher) Config() *config.Watcher { return w.cur.Load() }

// Name returns the watcher's name as configured.
func (w *Watcher) Name() string { return w.name }

// run is the watcher's loop. Nothing in it waits: every long operation
// (a start until ready, a stop until reaped, a hook) is a state the loop
// is in, left when an exit, a hook's result or a deadline arrives. It
// returns once quit is closed and no worker, and no hook result it goes on
// after, is left.
func (w *Watcher) run() {
	defer close(w.done)
	// Every worker is gone when the loop ends, so every check has been
	// told to end.
	defer w.checks.Wait()
	defer w.hooks.wait()
	defer w.launches.Wait() // each has sent its result, the loop being empty
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	defer w.timer.Stop()
	if w.resumed {
		w.resume()
		w.rearm()
	}
	quit := w.quit
	for {
		select {
		case r := <-w.reqc:
			w.handle(r)
		case st := <-w.exitc:
			w.handleExit(st)
		case d := <-w.hookc:
			w.hooksOut--
			w.handleHook(d)
		case l := <-w.launchc:
			w.handleLaunched(l)
		case r := <-w.healthc:
			w.handleHealth(r)
		case m := <-w.notifyc:
			w.handleNotify(m)
		case s := <-w.limitc:
			w.handleLimits(s)
		case s := <-w.queuec:
			w.handleQueue(s)
		case <-w.timer.C:
			w.tick()
		case <-quit:
			quit = nil
		}
		if w.cur.Load() != w.cfg {
			w.cur.Store(w.cfg)
			w.syncHealth()
		}
		w.publishScale()
		if quit == nil && w.empty() && w.hooksOut == 0 {
			return
		}
		w.rearm()
	}
}

// Start starts the watcher's workers and returns when all numprocesses of
// them have been spawned and are ready (the watcher is active); with an
// error if the watcher stopped meanwhile, or, wrapping errRetrying, at its
// first failed attempt, while it retries on. Starting an active watcher
// does nothing.
func (w *Watcher) Start(ctx context.Context) error {
	reply, err := w.startAsync(ctx)
	if err != nil {
		return err
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stop stops every worker gracefully and returns when all have been
// reaped. It overtakes whatever the watcher was doing: a start or reload
// in progress, or queued, is answered with ErrStopped, and a flapping
// retry is cancelled.
func (w *Watcher) Stop(ctx context.Context) error {
	reply := make(chan error, 1)
	return callErr(ctx, w, stopReq{reply}, reply)
}

// Info returns the watcher's state and a snapshot of its workers.
func (w *Watcher) Info(ctx context.Context) (State, []ProcessInfo, error) {
	st, err := w.Status(ctx)
	return st.State, st.Procs, err
}

// Status is a snapshot of a watcher, safe to keep.
type Status struct {
	State  State
	Target int           // numprocesses, as resized since the configuration
	Procs  []ProcessInfo // ordered by wid
	// Sockets are those its workers inherit, in fd order.
	Sockets []*sockets.Socket
	// Detail is what the watcher is doing or waiting for, beyond its
	// Circus state: "flapping, retry in 6s", "backoff: EMFILE, retry in
	// 400ms", "crash loop: restart in 800ms", "waiting for hook
	// before_stop", or why it stopped itself; "" when there is nothing to
	// add. RetryAt is when it next tries, if it waits to.
	Detail  string
	RetryAt time.Time
	// Autoscale is what the autoscaler sees (its bounds and the queue);
	// nil when the watcher is not autoscaled.
	Autoscale *ScaleStatus
	// Restarts counts the worker deaths the watcher replaced (or, once
	// stopped by them, retries after), by reason (see [Reasons]), since
	// the Watcher was created: a reloadconfig that keeps the watcher
	// keeps them, and they never go down. Deaths asked for by a stop, a
	// reload, a decr or a kill command are not counted.
	Restarts map[string]uint64
	// LastExit is the last death counted in Restarts, nil if none.
	LastExit *ExitInfo
	// Since is when the watcher last became active (its uptime); zero
	// when it is not active.
	Since time.Time
}

// Status returns the watcher's state, target size, workers and sockets, read
// together on its loop: for displays that must show a consistent watcher.
func (w *Watcher) Status(ctx context.Context) (Status, error) {
	reply := make(chan Status, 1)
	st, err := call(ctx, w, statusReq{reply}, reply)
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

// startAsync begins a start and returns the channel its reply comes on
// (see Start). The arbiter waits on it before it starts watchers of a
// lower priority, as systemd waits for a unit's start job, and not for its
// restarts, before the units ordered after it.
func (w *Watcher) startAsync(ctx context.Context) (<-chan error, error) {
	reply := make(chan error, 1)
	return reply, w.send(ctx, startReq{reply})
}
