package arbiter

import (
	"cmp"
	"context"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Publisher receives every lifecycle event. Publish must not block: the
// arbiter calls it from its watcher loops.
type Publisher interface {
	Publish(pubsub.Event)
}

// Options are the arbiter's collaborators. The zero value is usable.
type Options struct {
	// Logger receives the arbiter's log; nil discards it.
	Logger *slog.Logger
	// Publisher receives lifecycle events; nil drops them.
	Publisher Publisher
	// Stdout and Stderr are the arbiter's own output, where the output of
	// watchers without a stream goes (and StdoutStream's); nil means
	// os.Stdout and os.Stderr.
	Stdout, Stderr io.Writer
	// Reloads, if set, is told when each reload of the configuration
	// begins and ends (see [ReloadObserver]); nil tells nobody.
	Reloads ReloadObserver
}

// Arbiter owns the sockets and the watchers of one configuration. Create it
// with New, then call Run.
type Arbiter struct {
	log     *slog.Logger
	pub     Publisher
	launch  launcher
	con     logs.Consoles
	orphanc chan exitStatus
	// criticalc brings the first critical watcher that gave up (critical.go).
	criticalc chan *CriticalError
	opc       chan op
	started   chan struct{}
	done      chan struct{}                // closed when Run stops taking requests
	wg        sync.WaitGroup               // watcher loops
	cg        cgroupRoot                   // set by Run before any watcher loop (cgroup.go)
	guard     *guardian                    // set by Run after cg, nil without one (guardian.go)
	glink     *guardLink                   // how spawns reach the guardian (guardlink.go)
	queues    atomic.Pointer[queueSampler] // set by Run before the watcher loops run (queues.go)
	reloads   ReloadObserver               // nil: nobody is told
	// restored is the hand-over this Arbiter was made from (Restore),
	// nil for one made by New.
	restored *Handover

	// opCancel cancels the arbiter-wide operation running, so that a stop
	// of all overtakes a restart or reloadconfig; nil when none runs.
	opMu     sync.Mutex
	opCancel context.CancelFunc

	// snap is what other goroutines may read: replaced, never modified,
	// and only by the Run goroutine (or New, before Run starts).
	snap atomic.Pointer[snapshot]
}

type snapshot struct {
	watchers []*Watcher // in start order: priority descending, then file order
	sockets  []*sockets.Socket
	cfg      *config.Config
}

// New binds every socket of cfg, so that a port in use or a bad path fails
// here, before any worker exists. The error names the config file and line.
func New(cfg *config.Config, opts Options) (*Arbiter, error) {
	a := newArbiter(opts)
	socks, err := bindSockets(cfg, nil)
	if err != nil {
		return nil, err
	}
	ws, err := a.newWatchers(cfg, socks, nil)
	if err != nil {
		for _, s := range socks {
			s.Close()
		}
		return nil, err
	}
	a.snap.Store(&snapshot{watchers: ws, sockets: socks, cfg: cfg})
	return a, nil
}

// newArbiter is an Arbiter with its collaborators and nothing else.
func newArbiter(opts Options) *Arbiter {
	a := &Arbiter{
		log:       opts.Logger,
		pub:       opts.Publisher,
		reloads:   opts.Reloads,
		orphanc:   make(chan exitStatus, 64),
		criticalc: make(chan *CriticalError, 1),
		opc:       make(chan op),
		started:   make(chan struct{}),
		done:      make(chan struct{}),
		glink:     newGuardLink(),
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.launch = execLauncher{}
	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = os.Stdout
	}
	if stderr == nil {
		stderr = os.Stderr
	}
	a.con = logs.Consoles{Stdout: logs.NewConsole(stdout), Stderr: logs.NewConsole(stderr)}
	return a
}

// bindSockets binds the sockets of cfg, reusing those of old whose spec did
// not change. On failure it closes what it bound and returns a *config.Error.
func bindSockets(cfg *config.Config, old []*sockets.Socket) ([]*sockets.Socket, error) {
	var socks, fresh []*sockets.Socket
	for _, spec := range cfg.Sockets {
		if i := slices.IndexFunc(old, func(s *sockets.Socket) bool { return s.Spec() == spec }); i >= 0 {
			socks = append(socks, old[i])
			continue
		}
		s, err := sockets.Bind(spec)
		if err != nil {
			for _, f := range fresh {
				f.Close()
			}
			key := "port"
			if spec.Path != "" {
				key = "path"
			}
			section := "socket:" + spec.Name
			pos := cfg.Pos(section, key)
			if pos.Line == 0 {
				pos = cfg.Pos(section, "")
			}
			return nil, &config.Error{File: pos.File, Line: pos.Line, Section: section, Key: key, Msg: err.Error()}
		}
		fresh = append(fresh, s)
		socks = append(socks, s)
	}
	return socks, nil
}

// newWatchers creates the watchers of cfg in start order, reusing those of
// keep (by lower-cased name). It opens the new ones' output streams, so a
// log file that cannot be opened fails here, naming its line, with nothing
// left open.
func (a *Arbiter) newWatchers(cfg *config.Config, socks []*sockets.Socket, keep map[string]*Watcher) ([]*Watcher, error) {
	var ws, fresh []*Watcher
	for _, wc := range cfg.Watchers {
		if w, ok := keep[strings.ToLower(wc.Name)]; ok {
			ws = append(ws, w)
			continue
		}
		out, err := a.newOutput(wc, cfg)
		if err != nil {
			for _, w := range fresh {
				w.out.Close(0)
			}
			return nil, err
		}
		w := a.arbiterWatcher(wc, socks, out)
		a.attachCgroup(w)
		ws, fresh = append(ws, w), append(fresh, w)
	}
	sortWatchers(ws)
	return ws, nil
}

// arbiterWatcher is a new watcher of this arbiter, for New, Add and
// Restore alike: wired to its sampler, its critical channel and its
// guardian (a worker spawned without the guardian would get the
// parent-death signal, and die at an upgrade's exec).
func (a *Arbiter) arbiterWatcher(wc *config.Watcher, socks []*sockets.Socket, out *logs.Output) *Watcher {
	w := newWatcher(wc, watcherSockets(wc, socks), a.log, a.pub, a.launch)
	w.out = out
	w.kickQueues = a.kickQueues
	w.criticalc = a.criticalc
	w.guard = a.glink
	return w
}

// sortWatchers puts ws in start order: priority descending, stable.
func sortWatchers(ws []*Watcher) {
	slices.SortStableFunc(ws, func(x, y *Watcher) int { return cmp.Compare(y.spec.Priority, x.spec.Priority) })
}

// watcherSockets is the sockets a worker of w receives, in the config's
// socket order: those its command references (and its stdin_socket), or all
// of them with use_sockets.
func watcherSockets(w *config.Watcher, all []*sockets.Socket) []*sockets.Socket {
	want := map[string]bool{}
	for _, name := range w.SocketRefs() {
		want[name] = true
	}
	if w.StdinSocket != "" {
		want[strings.ToLower(w.StdinSocket)] = true
	}
	var out []*sockets.Socket
	for _, s := range all {
		if w.UseSockets || want[s.Name()] {
			out = append(out, s)
		}
	}
	return out
}

// Watchers returns the watchers in start order.
func (a *Arbiter) Watchers() []*Watcher { return a.snap.Load().watchers }

// Watcher returns the watcher named name (case-insensitively, as Circus
// looks them up), or nil.
func (a *Arbiter) Watcher(name string) *Watcher {
	for _, w := range a.snap.Load().watchers {
		if strings.EqualFold(w.name, name) {
			return w
		}
	}
	return nil
}

// Sockets returns the bound sockets in config order.
func (a *Arbiter) Sockets() []*sockets.Socket { return a.snap.Load().sockets }

// Started is closed once Run has started every autostart watcher (or
// failed to).
func (a *Arbiter) Started() <-chan struct{} { return a.started }

// Run starts the watchers in priority order and supervises them until ctx
// is done, or a critical watcher gives up, then shuts down (see the package
// documentation) and returns: nil, or the *CriticalError naming the
// watcher that gave up. Nothing it started is running when it returns.
func (a *Arbiter) Run(ctx context.Context) error {
	theReaper.acquire(a.orphanc, a.restored != nil)
	orphansDone := make(chan struct{})
	stopOrphans := make(chan struct{})
	go func() {
		defer close(orphansDone)
		a.reapOrphans(stopOrphans)
	}()
	defer func() {
		theReaper.release(a.orphanc)
		close(stopOrphans)
		<-orphansDone
	}()
	// Daemons that double-fork leave orphans; as a subreaper we get them
	// and reap them, so none lingers as a zombie.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		a.log.Warn("cannot become a child subreaper", "err", err)
	}
	if a.restored != nil {
		t0 := time.Now()
		a.startRestoredCgroups()
		tc := time.Since(t0)
		a.startGuardianFrom(a.restored.Guardian)
		tg := time.Since(t0)
		a.adoptWorkers()
		theReaper.unhold()
		a.log.Debug("hand-over: adopted", "cgroups", tc, "guardian", tg, "workers", time.Since(t0))
	} else {
		a.startCgroups()
		a.startGuardian()
	}

	q := a.newQueues()
	a.queues.Store(q)
	for _, w := range a.Watchers() {
		a.wg.Go(w.run)
	}
	q.start()
	// The start-up, then the arbiter-wide operations (restart,
	// reloadconfig, add, rm...), run one at a time on a goroutine of their
	// own, never on this one: one may wait minutes for a watcher that
	// cannot start, and the arbiter's shutdown must overtake it at once
	// (issue 14, item 1).
	opsCtx, cancelOps := context.WithCancel(context.WithoutCancel(ctx))
	var ops sync.WaitGroup
	ops.Go(func() {
		if a.restored != nil {
			// Every watcher goes on where the image before left it:
			// nothing is started that it had not started.
			close(a.started)
			a.serveOps(opsCtx)
			return
		}
		// Failures are logged. The last priority's answers are awaited
		// beside the operations, so that the arbiter takes commands (a
		// stop, a restart) while a watcher of it is slow to start.
		last, _ := a.startLevels(opsCtx, a.Watchers(), a.Config().Circus.WarmupDelay, false)
		ops.Go(func() {
			_ = a.awaitLevel(opsCtx, last, false)
			close(a.started)
			if opsCtx.Err() == nil {
				a.log.Info("arbiter started", "watchers", len(a.Watchers()), "sockets", len(a.Sockets()))
				a.emit(pubsub.Event{Kind: pubsub.Start})
			}
		})
		a.serveOps(opsCtx)
	})
	var err error
	select {
	case <-ctx.Done():
	case ce := <-a.criticalc:
		err = ce
		a.log.Error("arbiter stopping: a critical watcher gave up", "watcher", ce.Watcher, "reason", ce.Reason)
	}
	close(a.done)
	cancelOps()
	ops.Wait()
	a.shutdown()
	return err
}

// serveOps runs the arbiter-wide operations sent through do, in order,
// until ctx (the shutdown) is done; the running one gets a context that
// the shutdown cancels, so that whatever it waits for, it returns.
func (a *Arbiter) serveOps(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case o := <-a.opc:
			octx, cancel := context.WithCancel(o.ctx)
			stop := context.AfterFunc(ctx, cancel)
			a.opMu.Lock()
			a.opCancel = cancel
			a.opMu.Unlock()
			o.reply <- o.f(octx)
			a.opMu.Lock()
			a.opCancel = nil
			a.opMu.Unlock()
			stop()
			cancel()
		}
	}
}

// shutdown is the one shutdown sequence: watchers stopped in reverse
// priority (those of equal priority together), each gracefully; then their
// loops ended; then the sockets closed and unix socket files removed.
func (a *Arbiter) shutdown() {
	a.log.Info("arbiter stopping")
	a.queues.Load().stopQueues()
	ws := a.Watchers()
	for _, w := range ws {
		reply := make(chan error, 1)
		_ = callErr(context.Background(), w, finalReq{reply}, reply)
	}
	a.stopWatchers(ws)
	for _, w := range ws {
		close(w.quit)
	}
	a.wg.Wait()
	a.closeCgroups()
	a.stopGuardian()
	var outs sync.WaitGroup
	for _, w := range ws {
		outs.Go(func() { w.out.Close(outputGrace) })
	}
	outs.Wait()
	for _, s := range a.Sockets() {
		if err := s.Close(); err != nil {
			a.log.Warn("closing socket", "socket", s.Name(), "err", err)
		}
	}
	a.log.Info("arbiter stopped")
	a.emit(pubsub.Event{Kind: pubsub.Stop})
}

// emit publishes an arbiter-level event (one without a watcher).
func (a *Arbiter) emit(ev pubsub.Event) {
	if a.pub == nil {
		return
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	a.pub.Publish(ev)
}

func (a *Arbiter) reapOrphans(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case st := <-a.orphanc:
			a.log.Info("reaped orphan", "pid", st.pid, "exit_code", exitCode(st.status))
			a.emit(pubsub.Event{Kind: pubsub.Orphan, Pid: st.pid, ExitCode: exitCode(st.status)})
		}
	}
}
