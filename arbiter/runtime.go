package arbiter

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Errors of the run-time changes, for callers that map them to replies.
var (
	// ErrExists is returned by Add for a name already taken (in any case).
	ErrExists = errors.New("already exists")
	// ErrNotFound is returned for a watcher name that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrShutdown is returned to requests that arrive once Run is ending.
	ErrShutdown = errors.New("arbiter is shutting down")
)

// do runs f on the Run goroutine, which owns the watcher set, and waits for
// it. Changes of the set (add, remove, reloadconfig, restart) therefore
// happen one at a time, in order; commands on single watchers go to those
// watchers' loops and never wait here.
func (a *Arbiter) do(ctx context.Context, f func(ctx context.Context) error) error {
	reply := make(chan error, 1)
	select {
	case a.opc <- op{ctx: ctx, f: f, reply: reply}:
	case <-a.done:
		return ErrShutdown
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

type op struct {
	ctx   context.Context
	f     func(ctx context.Context) error
	reply chan error
}

// Config returns the configuration in effect: the one given to New or the
// last one reloaded (whose [circus] section is the one the arbiter started
// with, since that is what runs).
func (a *Arbiter) Config() *config.Config { return a.snap.Load().cfg }

// Add creates a watcher at run time and, with start, starts it and returns
// once it is active. Its sockets are those of the running configuration
// that it references (or all, with use_sockets); a reference to a socket
// that does not exist is an error. Such a watcher is kept by reloadconfig
// unless the file then defines one of the same name.
func (a *Arbiter) Add(ctx context.Context, cfg *config.Watcher, start bool) (*Watcher, error) {
	var w *Watcher
	err := a.do(ctx, func(ctx context.Context) error {
		if a.Watcher(cfg.Name) != nil {
			return fmt.Errorf("watcher %q: %w", cfg.Name, ErrExists)
		}
		old := a.snap.Load()
		if err := checkRefs(cfg, old.sockets); err != nil {
			return err
		}
		out, err := a.newOutput(cfg, nil)
		if err != nil {
			return err
		}
		w = a.arbiterWatcher(cfg, old.sockets, out)
		a.attachCgroup(w)
		w.runtime = true
		ws := append(slices.Clone(old.watchers), w)
		sortWatchers(ws)
		a.wg.Go(w.run)
		a.snap.Store(&snapshot{watchers: ws, sockets: old.sockets, cfg: old.cfg})
		a.log.Info("watcher added", "watcher", cfg.Name)
		w.emit(pubsub.Event{Kind: pubsub.Add})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if start {
		return w, w.Start(ctx)
	}
	return w, nil
}

// checkRefs refuses a watcher whose command names a socket that is not
// bound (Circus would start it with the reference unexpanded), and an
// autoscaled one whose sockets have no accept queue to read.
func checkRefs(cfg *config.Watcher, socks []*sockets.Socket) error {
	refs := cfg.SocketRefs()
	if cfg.StdinSocket != "" {
		refs = append(refs, cfg.StdinSocket)
	}
	for _, name := range refs {
		if !slices.ContainsFunc(socks, func(s *sockets.Socket) bool { return s.Name() == name }) {
			return fmt.Errorf("watcher %s: no socket named %q is bound", cfg.Name, name)
		}
	}
	specs := make([]sockets.Spec, len(socks))
	for i, s := range socks {
		specs[i] = s.Spec()
	}
	if err := config.CheckAutoscale(cfg, specs); err != nil {
		return fmt.Errorf("watcher %s: %w", cfg.Name, err)
	}
	return nil
}

// Remove takes the watcher name out of the arbiter, as Circus's rm does: it
// publishes remove, then stops the workers gracefully and returns once they
// are gone. With nostop the workers are left running, unsupervised: their
// exits are then reaped as orphans.
func (a *Arbiter) Remove(ctx context.Context, name string, nostop bool) error {
	return a.do(ctx, func(ctx context.Context) error {
		w := a.Watcher(name)
		if w == nil {
			return fmt.Errorf("watcher %q: %w", name, ErrNotFound)
		}
		w.emit(pubsub.Event{Kind: pubsub.Remove})
		if nostop {
			reply := make(chan error, 1)
			if err := callErr(ctx, w, abandonReq{reply}, reply); err != nil {
				return err
			}
		} else if err := w.Stop(ctx); err != nil {
			return err
		}
		old := a.snap.Load()
		ws := slices.DeleteFunc(slices.Clone(old.watchers), func(x *Watcher) bool { return x == w })
		a.snap.Store(&snapshot{watchers: ws, sockets: old.sockets, cfg: old.cfg})
		close(w.quit)
		<-w.done
		a.dropCgroup(w, nostop)
		// Not waited for here: the output of workers left running by
		// nostop may go on for ever, and is then no longer read.
		a.wg.Go(func() { w.out.Close(outputGrace) })
		a.log.Info("watcher removed", "watcher", w.name, "nostop", nostop)
		return nil
	})
}

// abandon forgets every worker, leaving it running; the loop can then end.
func (w *Watcher) abandon() {
	for pid, p := range w.procs {
		theReaper.disown(pid)
		w.endWatch(p)
		p.proc.Release()
		w.log.Info("abandoned", "pid", pid)
	}
	clear(w.procs)
	w.state = Stopped
	w.replyStart(fmt.Errorf("watcher %s: %w: removed", w.name, ErrStopped))
	w.progress()
}

// Restart stops every watcher (lowest priority first, as at shutdown) and
// starts the autostart ones again in priority order: Circus's restart
// without a name, without its re-creation of the whole arbiter.
func (a *Arbiter) Restart(ctx context.Context) error {
	return a.do(ctx, func(ctx context.Context) error {
		ws := a.Watchers()
		a.stopWatchers(ws)
		return a.startAll(ctx, ws, a.Config().Circus.WarmupDelay, true)
	})
}

// ReloadFile reads the configuration file again (the one the running
// configuration came from) and applies it as Reload does. A file that does
// not load changes nothing; the error names its file, line and key.
func (a *Arbiter) ReloadFile(ctx context.Context) error {
	cfg, err := config.Load(a.Config().File)
	if err != nil {
		return err
	}
	return a.Reload(ctx, cfg)
}

// Options returns the watcher's options in effect: its configuration as
// last set, with numprocesses as resized since.
func (w *Watcher) Options(ctx context.Context) (*config.Watcher, error) {
	reply := make(chan config.Watcher, 1)
	c, err := call(ctx, w, optionsReq{reply}, reply)
	return &c, err
}

// reloadKeys are the options whose change needs new workers (Circus's set:
// a graceful reload if the watcher runs); any other takes effect at the
// next use (graceful_timeout at the next stop, say).
var reloadKeys = []string{
	"Cmd", "Args", "Shell", "ShellArgs", "Executable", "WorkingDir", "User", "Group", "UID", "GID",
	"Groups", "CopyEnv", "CopyPath", "Virtualenv", "Env", "MaxAge", "MaxAgeVariance", "UseSockets", "ListenFDs",
	"StdinSocket", "CloseChildStdin", "CloseChildStdout", "CloseChildStderr", "Umask", "Nice",
	"Chroot", "Rlimits", "Cgroup",
}

// Set gives the watcher name new options, as Circus's set does, and returns
// when they are in effect: a changed numprocesses resizes the pool; a
// change of what a worker is made of (cmd, args, env, uid...) reloads a
// running watcher gracefully; anything else is used from now on. keys are
// the options the caller changed: one updated event is published for each.
// The configuration file's values stay the reference for reloadconfig.
func (a *Arbiter) Set(ctx context.Context, name string, cfg *config.Watcher, keys []string) error {
	w := a.Watcher(name)
	if w == nil {
		return fmt.Errorf("watcher %q: %w", name, ErrNotFound)
	}
	if err := checkRefs(cfg, a.Sockets()); err != nil {
		return err
	}
	socks := watcherSockets(cfg, a.Sockets())
	// A new stream is opened first, so that a file that cannot be opened
	// changes nothing; it takes over from the old one without a restart.
	streams, err := a.openChanged(w, cfg, nil)
	if err != nil {
		return err
	}
	reply := make(chan error, 1)
	err = callErr(ctx, w, setReq{cfg: cfg, socks: socks, keys: keys, reply: reply}, reply)
	if err != nil {
		streams.discard()
		return err
	}
	streams.apply(w)
	return nil
}

// ReloadAll reloads every running watcher gracefully, one after another in
// priority order, and starts the stopped ones (Circus's reload without a
// name). The errors of all are joined.
func (a *Arbiter) ReloadAll(ctx context.Context, sequential bool) error {
	var errs []error
	for _, w := range a.Watchers() {
		if err := w.Reload(ctx, sequential); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// StartAll starts the autostart watchers, highest priority first,
// [circus] warmup_delay apart, as the arbiter does at start-up (Circus's
// start without a name), and returns their start errors joined.
func (a *Arbiter) StartAll(ctx context.Context) error {
	return a.do(ctx, func(ctx context.Context) error {
		return a.startAll(ctx, a.Watchers(), a.Config().Circus.WarmupDelay, true)
	})
}

// StopAll stops every watcher, lowest priority first and those of equal
// priority together, and returns when all are stopped. It overtakes the
// arbiter-wide operation in progress (a restart, start or reloadconfig
// waiting for watchers to start), which is cancelled and answers so.
func (a *Arbiter) StopAll(ctx context.Context) error {
	a.opMu.Lock()
	if a.opCancel != nil {
		a.opCancel()
	}
	a.opMu.Unlock()
	return a.do(ctx, func(context.Context) error {
		a.stopWatchers(a.Watchers())
		return nil
	})
}

// set is setReq on the loop: see Arbiter.Set.
func (w *Watcher) set(r setReq) {
	for range r.keys {
		w.emit(pubsub.Event{Kind: pubsub.Updated})
	}
	old := w.cfg
	reload := !slices.Equal(r.socks, w.socks)
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(r.cfg).Elem()
	for _, f := range reloadKeys {
		if !reflect.DeepEqual(ov.FieldByName(f).Interface(), nv.FieldByName(f).Interface()) {
			reload = true
		}
	}
	resized := slices.Contains(r.keys, "numprocesses")
	w.log.Info("options set", "keys", strings.Join(r.keys, ","), "reload", reload)
	if reload && (w.state == Active || w.state == Starting) {
		if !resized {
			r.cfg.NumProcesses = w.target
		}
		w.beginReload(r.reply, r.cfg, r.socks, false, false)
		return
	}
	w.cfg, w.socks = r.cfg, r.socks
	if resized {
		w.target = r.cfg.NumProcesses
	}
	w.adoptAutoscale()
	w.scaleWaiters = append(w.scaleWaiters, r.reply)
	w.reconcile()
	w.progress()
}
