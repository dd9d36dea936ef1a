package arbiter

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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
}

// Arbiter owns the sockets and the watchers of one configuration. Create it
// with New, then call Run.
type Arbiter struct {
	log     *slog.Logger
	pub     Publisher
	launch  launcher
	con     logs.Consoles
	orphanc chan exitStatus
	opc     chan op
	started chan struct{}
	done    chan struct{}  // closed when Run stops taking requests
	wg      sync.WaitGroup // watcher loops
	cg      cgroupRoot     // set by Run before any watcher loop (cgroup.go)
	guard   *guardian      // set by Run after cg, nil without one (guardian.go)

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
	a := &Arbiter{
		log:     opts.Logger,
		pub:     opts.Publisher,
		orphanc: make(chan exitStatus, 64),
		opc:     make(chan op),
		started: make(chan struct{}),
		done:    make(chan struct{}),
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
		w := newWatcher(wc, watcherSockets(wc, socks), a.log, a.pub, a.launch)
		w.out = out
		a.attachCgroup(w)
		ws, fresh = append(ws, w), append(fresh, w)
	}
	sortWatchers(ws)
	return ws, nil
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
// is done, then shuts down (see the package documentation) and returns.
// Nothing it started is running when it returns.
func (a *Arbiter) Run(ctx context.Context) error {
	theReaper.acquire(a.orphanc)
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
	a.startCgroups()
	a.startGuardian()

	for _, w := range a.Watchers() {
		a.wg.Go(w.run)
	}
	// The start-up, then the arbiter-wide operations (restart,
	// reloadconfig, add, rm...), run one at a time on a goroutine of their
	// own, never on this one: one may wait minutes for a watcher that
	// cannot start, and the arbiter's shutdown must overtake it at once
	// (issue 14, item 1).
	opsCtx, cancelOps := context.WithCancel(context.WithoutCancel(ctx))
	var ops sync.WaitGroup
	ops.Go(func() {
		// Failures are logged. The last priority's answers are awaited
		// beside the operations, so that the arbiter takes commands (a
		// stop, a restart) while a watcher of it is slow to start.
		last, _ := a.startLevels(opsCtx, a.Watchers(), a.Config().Circus.WarmupDelay, false)
		ops.Go(func() {
			_ = a.awaitLevel(opsCtx, last, false)
			close(a.started)
			a.log.Info("arbiter started", "watchers", len(a.Watchers()), "sockets", len(a.Sockets()))
			a.emit(pubsub.Event{Kind: pubsub.Start})
		})
		a.serveOps(opsCtx)
	})
	<-ctx.Done()
	close(a.done)
	cancelOps()
	ops.Wait()
	a.shutdown()
	return nil
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

// startAll starts the autostart watchers, highest priority first, pausing
// warmup between two starts. Watchers of one priority start one after
// another without waiting for each other; those of a lower priority start
// once every one of the higher is active or has failed its first attempt
// (see startAsync): a priority is an ordering, as systemd's After=, so a
// database with ready = notify is serving before the application that
// needs it starts, and a watcher that cannot start holds the others back
// by one attempt, not by all its retries. The same holds for the answer:
// a command (restart, start, reloadconfig) answers once every watcher is
// active or has failed an attempt, as systemctl start answers with its
// job, not with the restarts that follow, and a watcher that retries on
// is one of its errors. At start-up (command false) it is a warning only.
// It logs each failure and returns them joined.
func (a *Arbiter) startAll(ctx context.Context, ws []*Watcher, warmup time.Duration, command bool) error {
	last, err := a.startLevels(ctx, ws, warmup, command)
	return errors.Join(err, a.awaitLevel(ctx, last, command))
}

// started is a watcher whose start was begun, and where its answer comes.
type started struct {
	w     *Watcher
	reply <-chan error
}

// startLevels is startAll up to the last priority, whose starts it begins
// and returns without waiting for them: at start-up the arbiter takes
// commands meanwhile.
func (a *Arbiter) startLevels(ctx context.Context, ws []*Watcher, warmup time.Duration, command bool) ([]started, error) {
	ws = slices.Clone(ws)
	slices.SortStableFunc(ws, func(x, y *Watcher) int { return cmp.Compare(y.spec.Priority, x.spec.Priority) })
	var errs []error
	var level []started
	first := true
	for i := 0; i < len(ws); {
		if err := a.awaitLevel(ctx, level, command); err != nil {
			errs = append(errs, err)
		}
		level = nil
		end := i
		for end < len(ws) && ws[end].spec.Priority == ws[i].spec.Priority {
			end++
		}
		for _, w := range ws[i:end] {
			if !w.spec.Autostart {
				continue
			}
			if !first && warmup > 0 {
				t := time.NewTimer(warmup)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, errors.Join(append(errs, ctx.Err())...)
				}
			}
			first = false
			reply, err := w.startAsync(ctx)
			if err != nil {
				a.log.Error("start failed", "watcher", w.name, "err", err)
				errs = append(errs, err)
				continue
			}
			level = append(level, started{w, reply})
		}
		i = end
	}
	return level, errors.Join(errs...)
}

// awaitLevel waits for the answers of the starts of one priority (see
// startAll), logs each failure and returns them joined.
func (a *Arbiter) awaitLevel(ctx context.Context, level []started, command bool) error {
	var errs []error
	for _, s := range level {
		select {
		case err := <-s.reply:
			switch {
			case errors.Is(err, errRetrying) && !command:
				a.log.Warn("not started yet; the next priorities start", "watcher", s.w.name, "err", err)
			case err != nil:
				a.log.Error("start failed", "watcher", s.w.name, "err", err)
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		}
	}
	return errors.Join(errs...)
}

// shutdown is the one shutdown sequence: watchers stopped in reverse
// priority (those of equal priority together), each gracefully; then their
// loops ended; then the sockets closed and unix socket files removed.
func (a *Arbiter) shutdown() {
	a.log.Info("arbiter stopping")
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

// stopWatchers stops ws in reverse priority order; a background context,
// because graceful_timeout already bounds every stop.
func (a *Arbiter) stopWatchers(ws []*Watcher) {
	for end := len(ws); end > 0; {
		start := end - 1
		for start > 0 && ws[start-1].spec.Priority == ws[end-1].spec.Priority {
			start--
		}
		var wg sync.WaitGroup
		for _, w := range ws[start:end] {
			wg.Go(func() {
				if err := w.Stop(context.Background()); err != nil {
					a.log.Error("stop failed", "watcher", w.name, "err", err)
				}
			})
		}
		wg.Wait()
		end = start
	}
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

// Reload applies a new configuration to a running arbiter: sockets whose
// spec changed are bound anew first (so a failure changes nothing);
// watchers that are new start, those gone stop, those whose numprocesses
// alone changed are resized, those whose options or sockets changed are
// reloaded gracefully (new workers first) with the new options, and
// unchanged ones are not touched (same pids). It returns when done; a
// watcher whose reload failed (its new workers could not start, so its old
// ones kept running) makes it return an error naming it.
func (a *Arbiter) Reload(ctx context.Context, cfg *config.Config) error {
	return a.do(ctx, func(ctx context.Context) error { return a.apply(ctx, cfg) })
}

func (a *Arbiter) apply(ctx context.Context, cfg *config.Config) error {
	old := a.snap.Load()
	d := config.Compare(old.cfg, cfg)
	if d.CircusChanged {
		// Circus restarts every watcher for this, and again on every later
		// reload (its bug). Its endpoints are bound at start, so the
		// section in effect stays the one the arbiter started with, and
		// globaloptions keeps telling the truth.
		a.log.Warn("changes in [circus] take effect at the next start of the arbiter; watchers are not restarted for them")
		c := *cfg
		c.Circus = old.cfg.Circus
		cfg = &c
	}
	// A changed socket is bound anew before anything stops, so that a
	// failure (its new address in use) changes nothing. One changed at the
	// same address (a new backlog, say) cannot be: its workers hold the
	// old one. Those workers are stopped first, the old socket closed and
	// the new one bound, and they start again on it (Circus, bug #772,
	// keeps them on the old socket and answers an error).
	current := old.sockets
	moved, users := a.sameAddress(cfg, old)
	if len(moved) > 0 {
		a.log.Warn("socket changed at the same address: its watchers stop while it is bound again",
			"sockets", socketNames(moved), "watchers", watcherNames(users))
		a.stopWatchers(users)
		for _, s := range moved {
			s.Close()
		}
		current = slices.DeleteFunc(slices.Clone(current), func(s *sockets.Socket) bool { return slices.Contains(moved, s) })
	}
	socks, err := bindSockets(cfg, current)
	// A socket just closed may still be open for a moment in a child
	// between its fork and its exec (spawn.c closes it there), which
	// keeps the address in use: give it that moment.
	for deadline := time.Now().Add(2 * time.Second); err != nil && len(moved) > 0 &&
		strings.Contains(err.Error(), syscall.EADDRINUSE.Error()) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		socks, err = bindSockets(cfg, current)
	}
	if err != nil {
		if len(moved) > 0 {
			a.restoreMoved(moved, users)
		}
		return fmt.Errorf("reload: %w", err)
	}
	// Log files are opened next, before anything stops, so that one that
	// cannot be opened fails the reload with nothing changed.
	existing := map[string]*Watcher{}
	for _, w := range old.watchers {
		existing[strings.ToLower(w.name)] = w
	}
	streams := map[*Watcher]streamChange{}
	created, err := a.newWatchers(cfg, socks, existing)
	for _, nc := range cfg.Watchers {
		if err != nil {
			break
		}
		w := existing[strings.ToLower(nc.Name)]
		if w == nil || reflect.DeepEqual(w.spec, nc) {
			continue
		}
		streams[w], err = a.openChanged(w, nc, cfg)
	}
	if err != nil {
		for _, c := range streams {
			c.discard()
		}
		for _, w := range created {
			if existing[strings.ToLower(w.name)] != w {
				w.out.Close(0)
			}
		}
		for _, s := range socks {
			if !slices.Contains(current, s) {
				s.Close()
			}
		}
		if len(moved) > 0 {
			a.restoreMoved(moved, users)
		}
		return fmt.Errorf("reload: %w", err)
	}
	keep := map[string]*Watcher{}
	var gone, runtime []*Watcher
	type change struct {
		w          *Watcher
		cfg        *config.Watcher
		socks      []*sockets.Socket
		oldSpec    *config.Watcher
		oldSocks   []*sockets.Socket
		resizeOnly bool
	}
	var changes []change
	for _, w := range old.watchers {
		i := slices.IndexFunc(cfg.Watchers, func(c *config.Watcher) bool { return strings.EqualFold(c.Name, w.name) })
		if i < 0 {
			if w.runtime {
				// Added by a command, not by the file: the file's
				// reload has no say over it (unlike Circus's).
				keep[strings.ToLower(w.name)] = w
				runtime = append(runtime, w)
			} else {
				gone = append(gone, w)
			}
			continue
		}
		w.runtime = false
		keep[strings.ToLower(w.name)] = w
		nc, ns := cfg.Watchers[i], watcherSockets(cfg.Watchers[i], socks)
		if reflect.DeepEqual(w.spec, nc) && slices.Equal(w.specSocks, ns) {
			continue
		}
		changes = append(changes, change{w: w, cfg: nc, socks: ns, oldSpec: w.spec, oldSocks: w.specSocks,
			resizeOnly: liveChange(w.spec, nc) && slices.Equal(w.specSocks, ns)})
		w.spec, w.specSocks = nc, ns
	}
	a.stopWatchers(gone)
	for _, w := range gone {
		close(w.quit)
		<-w.done
		a.dropCgroup(w, false)
		a.wg.Go(func() { w.out.Close(outputGrace) })
	}
	ws := append(created, runtime...)
	sortWatchers(ws)
	var fresh []*Watcher
	for _, w := range ws {
		if _, kept := keep[strings.ToLower(w.name)]; !kept {
			fresh = append(fresh, w)
			a.wg.Go(w.run)
		}
	}
	a.snap.Store(&snapshot{watchers: ws, sockets: socks, cfg: cfg})
	// Changed watchers are reloaded gracefully, all at once: each one's
	// new workers start before its old ones stop, on the new sockets if
	// those changed, so a moved socket is served without a gap.
	var wg sync.WaitGroup
	errs := make([]error, len(changes))
	for i, c := range changes {
		wg.Go(func() {
			if c.resizeOnly {
				errs[i] = c.w.setNumProcesses(ctx, c.cfg)
			} else {
				errs[i] = c.w.reconfigure(ctx, c.cfg, c.socks)
			}
			if errs[i] != nil {
				a.log.Error("reload failed", "watcher", c.w.name, "err", errs[i])
			}
		})
	}
	wg.Wait()
	for i, c := range changes {
		if errs[i] != nil {
			// Not applied: the next reload compares against what runs.
			c.w.spec, c.w.specSocks = c.oldSpec, c.oldSocks
			streams[c.w].discard()
		} else {
			streams[c.w].apply(c.w)
		}
	}
	for _, s := range old.sockets {
		if !slices.Contains(socks, s) {
			s.Close()
		}
	}
	// New watchers that cannot start fail the reload's answer too (they
	// were once dropped), though the rest of the configuration is applied.
	errs = append(errs, a.startAll(ctx, fresh, 0, true))
	a.emit(pubsub.Event{Kind: pubsub.ReloadConfig})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	a.log.Info("configuration reloaded", "reloaded", len(changes), "stopped", len(gone), "started", len(fresh),
		"watchers_added", d.WatchersAdded, "watchers_removed", d.WatchersRemoved, "watchers_changed", d.WatchersChanged,
		"sockets_added", d.SocketsAdded, "sockets_removed", d.SocketsRemoved, "sockets_changed", d.SocketsChanged)
	return nil
}

// sameAddress returns the running sockets whose spec changes in cfg while
// their address does not, and the watchers that use them.
func (a *Arbiter) sameAddress(cfg *config.Config, old *snapshot) (moved []*sockets.Socket, users []*Watcher) {
	for _, spec := range cfg.Sockets {
		for _, s := range old.sockets {
			o := s.Spec()
			if o.Name != spec.Name || o == spec {
				continue
			}
			if (spec.Path != "" && spec.Path == o.Path) || (spec.Path == "" && o.Path == "" && spec.Port != 0 &&
				spec.Port == o.Port && spec.Host == o.Host) {
				moved = append(moved, s)
			}
		}
	}
	for _, w := range old.watchers {
		if slices.ContainsFunc(w.specSocks, func(s *sockets.Socket) bool { return slices.Contains(moved, s) }) {
			users = append(users, w)
		}
	}
	return moved, users
}

// restoreMoved binds the old specs of moved again after their new specs
// failed to bind, and starts their watchers on them, so that a failed
// reload leaves things as they were (with new pids).
func (a *Arbiter) restoreMoved(moved []*sockets.Socket, users []*Watcher) {
	old := a.snap.Load()
	socks := slices.Clone(old.sockets)
	for _, m := range moved {
		s, err := sockets.Bind(m.Spec())
		if err != nil {
			a.log.Error("cannot bind the old socket again; its watchers stay stopped", "socket", m.Name(), "err", err)
			return
		}
		socks[slices.Index(socks, m)] = s
	}
	for _, w := range users {
		w.specSocks = watcherSockets(w.spec, socks)
		if err := w.reconfigure(context.Background(), w.spec, w.specSocks); err != nil {
			a.log.Error("restart on the old socket failed", "watcher", w.name, "err", err)
		}
	}
	a.snap.Store(&snapshot{watchers: old.watchers, sockets: socks, cfg: old.cfg})
}

func socketNames(ss []*sockets.Socket) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name())
	}
	return out
}

func watcherNames(ws []*Watcher) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.name)
	}
	return out
}
