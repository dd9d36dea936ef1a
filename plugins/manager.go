package plugins

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Commands is what plugins act through: the command table
// (control/commands.Table), the one the control endpoint and the console
// use. Accept must not block (control.OrderedHandler's contract).
type Commands interface {
	Accept(req control.Request) func(ctx context.Context) control.Reply
}

// Options are a Manager's collaborators.
type Options struct {
	// Commands receives the plugins' requests. Required.
	Commands Commands
	// Bus carries the arbiter's events, to the plugins that follow them
	// and to the Manager, which reacts to ReloadConfig. nil: no events,
	// and the plugins of the first configuration run until Close.
	Bus *pubsub.Bus
	// Config returns the configuration in effect (arbiter.Arbiter.Config):
	// read at Start and after every ReloadConfig event. Required.
	Config func() *config.Config
	// Logger receives the plugins' log lines, each with a plugin
	// attribute; nil discards them.
	Logger *slog.Logger
}

// Manager runs the plugins of the configuration in effect. Its methods
// are not safe for concurrent use; Close may be called once.
type Manager struct {
	opts   Options
	log    *slog.Logger
	sub    *pubsub.Subscription // nil without a Bus
	ctx    context.Context      // the plugins' parent: cancelled by Close
	cancel context.CancelFunc
	done   chan struct{} // closed when loop has returned

	// Owned by loop (by Start before loop begins).
	running map[string]*instance
}

// instance is one [plugin:NAME] section the Manager has acted on.
type instance struct {
	cfg    *config.Plugin
	cancel context.CancelFunc
	done   chan struct{} // nil when nothing runs: inactive, or Flapping
}

func (in *instance) stop() {
	if in.done == nil {
		return
	}
	in.cancel()
	<-in.done
}

// Start starts the plugins of opts.Config() and follows reloads until
// Close. A plugin that cannot start is logged and left out.
func Start(opts Options) *Manager {
	m := &Manager{opts: opts, log: opts.Logger, running: map[string]*instance{}, done: make(chan struct{})}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if opts.Bus != nil {
		// Every event comes through here, only to find ReloadConfig; the
		// loop does little else, and a lost one is noticed (see loop).
		m.sub = opts.Bus.Subscribe(256)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	m.reconcile(opts.Config())
	go m.loop()
	return m
}

// Close stops every plugin and waits for them to return.
func (m *Manager) Close() {
	m.cancel()
	<-m.done
}

func (m *Manager) loop() {
	defer close(m.done)
	defer func() {
		for name, in := range m.running {
			in.stop()
			delete(m.running, name)
		}
		if m.sub != nil {
			m.sub.Close()
		}
	}()
	var events <-chan pubsub.Event
	if m.sub != nil {
		events = m.sub.C()
	}
	var dropped uint64
	for {
		select {
		case <-m.ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			// A lost event may have been a ReloadConfig: looking again
			// costs a comparison of the sections.
			if d := m.sub.Dropped(); ev.Kind == pubsub.ReloadConfig || d != dropped {
				dropped = d
				m.reconcile(m.opts.Config())
			}
		}
	}
}

// reconcile makes the running plugins those of cfg: it stops the ones whose
// section is gone or changed, then starts the new and changed ones, in file
// order.
func (m *Manager) reconcile(cfg *config.Config) {
	want := map[string]*config.Plugin{}
	for _, p := range cfg.Plugins {
		want[p.Name] = p
	}
	for name, in := range m.running {
		p, ok := want[name]
		if ok && reflect.DeepEqual(p, in.cfg) {
			continue
		}
		in.stop()
		delete(m.running, name)
		if in.done != nil {
			if ok {
				m.log.Info("plugin stopped: its section changed", "plugin", name)
			} else {
				m.log.Info("plugin stopped: its section is gone", "plugin", name)
			}
		}
	}
	for _, p := range cfg.Plugins {
		if _, ok := m.running[p.Name]; !ok {
			m.start(cfg, p)
		}
	}
}

// start starts p. A failure is logged and p left out of running, so that
// the next reload tries again.
func (m *Manager) start(cfg *config.Config, p *config.Plugin) {
	log := m.log.With("plugin", p.Name)
	spec, err := p.Spec()
	if err != nil {
		log.Error("plugin not started", "err", err)
		return
	}
	if spec == nil {
		m.running[p.Name] = &instance{cfg: p}
		return
	}
	ctx, cancel := context.WithCancel(m.ctx)
	e := env{name: p.Name, cmds: &client{name: p.Name, cmds: m.opts.Commands, log: log}, bus: m.opts.Bus, log: log}
	pl, err := newPlugin(e, spec)
	if err != nil {
		cancel()
		var ke *keyError
		if errors.As(err, &ke) {
			section := "plugin:" + p.Name
			pos := cfg.Pos(section, ke.key)
			err = &config.Error{File: pos.File, Line: pos.Line, Section: section, Key: ke.key, Msg: ke.err.Error()}
		}
		log.Error("plugin not started", "err", err)
		return
	}
	in := &instance{cfg: p, cancel: cancel, done: make(chan struct{})}
	m.running[p.Name] = in
	go func() {
		defer close(in.done)
		pl.run(ctx)
	}()
	log.Info("plugin started", "use", p.Use)
}

// keyError is a plugin that could not start because of the value of one of
// its options (a port in use): the Manager names the option's line.
type keyError struct {
	key string
	err error
}

func (e *keyError) Error() string { return fmt.Sprintf("%s: %v", e.key, e.err) }
func (e *keyError) Unwrap() error { return e.err }

// plugin is a started plugin. run blocks until ctx is done, then releases
// everything the plugin holds.
type plugin interface {
	run(ctx context.Context)
}

// env is what every plugin is given.
type env struct {
	name string
	cmds *client
	bus  *pubsub.Bus
	log  *slog.Logger
}

// subscribe returns a subscription to the bus, or nil without one.
func (e env) subscribe() *pubsub.Subscription {
	if e.bus == nil {
		return nil
	}
	// Room for a burst (a reload of a large pool publishes a few events
	// per worker at once) at about 120 kB a plugin.
	return e.bus.Subscribe(1024)
}

// newPlugin builds the plugin of spec, binding what it listens on or sends
// from, so that a failure is known before it runs.
func newPlugin(e env, spec config.PluginSpec) (plugin, error) {
	switch s := spec.(type) {
	case *config.WatchDog:
		return newWatchDog(e, s)
	case *config.ResourceWatcher:
		return newResourceWatcher(e, s)
	case *config.StatsdEmitter:
		return newStatsdEmitter(e, s)
	case *config.FullStats:
		return newFullStats(e, s)
	case *config.HTTPObserver:
		return newHTTPObserver(e, s)
	case *config.CommandReloader:
		return newCommandReloader(e, s), nil
	case *config.RedisObserver:
		return newRedisObserver(e, s)
	}
	panic(fmt.Sprintf("BUG: no plugin for %T", spec))
}
