// Package commands is Circus's command table: it turns control requests
// (add, incr, restart, set, stats... reference circus-0.19.md §2.4) into
// calls on an *arbiter.Arbiter and the results into Circus's replies. The
// ZeroMQ control endpoint (control.Server) and the web console both drive
// the arbiter through it, so a command behaves the same from either.
//
// It lives apart from package control so that circusctl, which needs only
// control's client, never links the arbiter.
//
// Ordering: commands that change one watcher queue behind each other, in
// the order they arrived, and run one at a time; commands on different
// watchers never wait for each other (Circus's single lock, and its errno 5
// "arbiter is already running ...", are gone). Commands that only read run
// at once, and so does signal, so that a SIGCONT can reach workers whose
// kill is still waiting out graceful_timeout. add and rm queue under the
// watcher's name; commands on all watchers or several (reloadconfig, and
// start, stop, restart or reload without a name or matching several) share
// one more queue. stop and kill overtake the queue of their watcher (or
// all): they start at once, and the watcher cancels and answers the start,
// restart or reload they overtook (its own stop is what ends them), while
// the commands queued after them still wait for them.
package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/suggest"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

// Options are a Table's collaborators.
type Options struct {
	// Logger receives the failures of commands sent without waiting,
	// which have nobody else to tell; nil discards them.
	Logger *slog.Logger
	// Quit ends the arbiter (cancels the context of its Run); nil makes
	// quit an error.
	Quit func()
	// Stopped is closed once the arbiter's Run has returned: quit with
	// waiting answers then. nil: quit answers at once.
	Stopped <-chan struct{}
	// Sampler is shared with the stats stream so that both measure cpu
	// from the same baseline; nil makes a Table its own.
	Sampler *stats.Sampler
	// MaxQueued bounds the commands queued or running on watchers
	// (DefaultMaxQueued when 0). The server bounds the requests in flight
	// per connection, but a command sent without waiting, or as a cast,
	// leaves flight at once while it still waits for its turn here; past
	// the bound a command is refused rather than held in memory.
	MaxQueued int
	// Enforce applies the running configuration's [circus] access keys
	// to every request (package access): cmd/arbiter always sets it; a
	// test of the commands themselves may leave it off.
	Enforce bool
	// Publish receives the audit trail: a command event for every command
	// that may change something, run or refused. nil: only logged.
	Publish func(pubsub.Event)
	// Journal holds the arbiter's own recent log lines, which the logs
	// command shows beside the workers' output; nil: only the workers'.
	Journal *logs.Journal
	// Upgrader runs the upgrade command (upgrade.go); nil makes it an
	// error.
	Upgrader Upgrader
}

// DefaultMaxQueued is Options.MaxQueued's default: far more than a
// circusctl script or a plugin queues, small enough that a runaway client
// costs little memory.
const DefaultMaxQueued = 1024

// Table executes control requests against one arbiter. It implements
// control.OrderedHandler. Close it after the control server that feeds it.
type Table struct {
	a       *arbiter.Arbiter
	opts    Options
	log     *slog.Logger
	sampler *stats.Sampler

	// ctx is what queued work runs under: not the caller's, since a
	// command sent without waiting outlives its request.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	pol atomic.Pointer[policyOf] // see policy

	mu      sync.Mutex
	pending []*entry       // queued commands in arrival order, running ones included
	adding  map[string]int // pending adds by lower-cased name
}

// allKey is the key of commands on all watchers or several: they wait for
// every command before them and every command after them waits for them.
const allKey = "\x00all"

// entry is one queued command.
type entry struct {
	key     string // lower-cased watcher name, or allKey
	run     func()
	started bool
	// overtakes: started at once, whatever is queued before it.
	overtakes bool
}

// New returns the command table of a.
func New(a *arbiter.Arbiter, opts Options) (*Table, error) {
	t := &Table{a: a, opts: opts, log: opts.Logger, sampler: opts.Sampler, adding: map[string]int{}}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.opts.MaxQueued <= 0 {
		t.opts.MaxQueued = DefaultMaxQueued
	}
	if t.sampler == nil {
		s, err := stats.NewSampler()
		if err != nil {
			return nil, err
		}
		t.sampler = s
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t, nil
}

// Close cancels the work still queued or running and waits for it.
func (t *Table) Close() {
	t.cancel()
	t.wg.Wait()
}

// Handle runs one request and returns its reply.
func (t *Table) Handle(ctx context.Context, req control.Request) control.Reply {
	return t.Accept(req)(ctx)
}

// job is a validated request: what to run, on which queue.
type job struct {
	// key is the queue ("" runs at once: the command only reads).
	key string
	// async commands honour waiting: without it the reply is sent once
	// check passed (at once if there is no check) and run's result is
	// only logged.
	async bool
	// check, when set, runs in the command's turn before run; its error
	// is the reply, waiting or not (a duplicate add, a file that does not
	// load).
	check func(ctx context.Context) *control.Error
	run   func(ctx context.Context) control.Reply
	// adds marks an add of the watcher key: until its check ran, commands
	// naming that watcher are accepted although it does not exist yet.
	adds bool
	// overtakes marks a stop or kill: it runs at once, ahead of the
	// commands queued before it on its key, which it cancels, and those
	// after it wait for it as usual.
	overtakes bool
}

type command func(t *Table, req control.Request) (job, *control.Error)

var table map[string]command

func init() {
	table = map[string]command{
		"add":           cmdAdd,
		"decr":          func(t *Table, r control.Request) (job, *control.Error) { return cmdIncr(t, r, -1) },
		"dstats":        cmdDstats,
		"get":           cmdGet,
		"globaloptions": cmdGlobalOptions,
		"incr":          func(t *Table, r control.Request) (job, *control.Error) { return cmdIncr(t, r, 1) },
		"ipython":       cmdIPython,
		"kill":          cmdKill,
		"list":          cmdList,
		"logs":          cmdLogs,
		"listen":        cmdListen,
		"listsockets":   cmdListSockets,
		"numprocesses":  cmdNumProcesses,
		"numwatchers":   cmdNumWatchers,
		"options":       cmdOptions,
		"quit":          cmdQuit,
		"reload":        cmdReload,
		"reloadconfig":  cmdReloadConfig,
		"restart":       cmdRestart,
		"rm":            cmdRm,
		"set":           cmdSet,
		"signal":        cmdSignal,
		"start":         cmdStart,
		"stats":         cmdStats,
		"status":        cmdStatus,
		"stop":          cmdStop,
		"tail":          cmdTail,
		"upgrade":       cmdUpgrade,
		"upgradestatus": cmdUpgradeStatus,
	}
}

// Names lists the commands the table knows, sorted, for help texts,
// suggestions and tests.
func Names() []string { return slices.Sorted(maps.Keys(table)) }

// Accept validates req and queues it; the function it returns waits for
// the command's turn and result (see control.OrderedHandler). It never
// blocks.
func (t *Table) Accept(req control.Request) func(ctx context.Context) control.Reply {
	fail := func(e *control.Error) func(context.Context) control.Reply {
		return func(context.Context) control.Reply { return control.Fail(e) }
	}
	if e := t.authorize(req); e != nil {
		return fail(e)
	}
	c, ok := table[strings.ToLower(req.Command)]
	if !ok {
		return fail(control.Errorf(control.UnknownCommand, "unknown command: '%s'%s", req.Command,
			suggest.Hint(strings.ToLower(req.Command), Names(), quote)))
	}
	j, e := c(t, req)
	if e != nil {
		return fail(e)
	}
	waiting := true
	if j.async {
		if waiting, e = req.BoolOr("waiting", false); e != nil {
			return fail(e)
		}
	}
	if j.key == "" {
		return t.auditedRun(req, j.run)
	}
	done := make(chan control.Reply, 1)
	checked := make(chan *control.Error, 1)
	cmd := strings.ToLower(req.Command)
	queued := t.enqueue(j.key, j.adds, j.overtakes, func() {
		var e *control.Error
		if j.check != nil {
			e = j.check(t.ctx)
		}
		if j.adds {
			t.mu.Lock()
			if t.adding[j.key]--; t.adding[j.key] == 0 {
				delete(t.adding, j.key)
			}
			t.mu.Unlock()
		}
		checked <- e
		if e != nil {
			t.auditReply(req, control.Fail(e))
			done <- control.Fail(e)
			return
		}
		rep := j.run(t.ctx)
		t.auditReply(req, rep)
		if !waiting && rep.Err != nil {
			t.log.Error("command failed", "command", cmd, "err", rep.Err.Reason)
		}
		done <- rep
	})
	if !queued {
		return fail(control.Errorf(control.CommandError, "%s: %d commands already queued; retry when they are done", cmd, t.opts.MaxQueued))
	}
	if !waiting && j.check == nil {
		return func(context.Context) control.Reply { return control.OK() }
	}
	return func(ctx context.Context) control.Reply {
		select {
		case e := <-checked:
			if e != nil {
				return control.Fail(e)
			}
			if !waiting {
				return control.OK()
			}
		case <-ctx.Done():
			return control.Failf(control.CommandError, "%s: %v", cmd, ctx.Err())
		}
		select {
		case rep := <-done:
			return rep
		case <-ctx.Done():
			return control.Failf(control.CommandError, "%s: %v", cmd, ctx.Err())
		}
	}
}

// enqueue runs f once every command queued before it that it conflicts
// with (one on the same watcher, or one on all) has finished. It reports
// false, queueing nothing, when MaxQueued commands are already queued.
// adds counts the command as a pending add of the watcher key.
func (t *Table) enqueue(key string, adds, overtakes bool, f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.pending) >= t.opts.MaxQueued {
		return false
	}
	if adds {
		t.adding[key]++
	}
	t.pending = append(t.pending, &entry{key: key, run: f, overtakes: overtakes})
	t.schedule()
	return true
}

// schedule starts every queued command that nothing before it blocks: the
// first of each watcher's commands, up to the first command on all, which
// starts only when it is first of all. One pass, so that a long queue
// costs linear time per change. Called with mu held.
func (t *Table) schedule() {
	seen := map[string]bool{}
	for i, e := range t.pending {
		if e.overtakes {
			if !e.started {
				t.start(e)
			}
			if e.key == allKey {
				return
			}
			seen[e.key] = true
			continue
		}
		if e.key == allKey {
			if i == 0 && !e.started {
				t.start(e)
			}
			return
		}
		if seen[e.key] {
			continue
		}
		seen[e.key] = true
		if !e.started {
			t.start(e)
		}
	}
}

// start runs e, and when it is done, takes it off the queue and starts
// what it held back. Called with mu held.
func (t *Table) start(e *entry) {
	e.started = true
	t.wg.Go(func() {
		e.run()
		t.mu.Lock()
		defer t.mu.Unlock()
		t.pending = slices.DeleteFunc(t.pending, func(x *entry) bool { return x == e })
		t.schedule()
	})
}

// target is a watcher named by a queued command. It is looked up when the
// command runs, since an add queued before it may create it.
type target struct {
	t    *Table
	name string
}

// target checks the request's required "name": a watcher that exists, or
// one an add queued before will create.
func (t *Table) target(req control.Request) (target, *control.Error) {
	name, e := req.String("name")
	if e != nil {
		return target{}, e
	}
	if !t.isAdding(strings.ToLower(name)) && t.a.Watcher(name) == nil {
		return target{}, t.notFound(name)
	}
	return target{t: t, name: name}, nil
}

// isAdding reports whether an add of the watcher key is queued.
func (t *Table) isAdding(key string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.adding[key] > 0
}

func (g target) key() string { return strings.ToLower(g.name) }

// get returns the watcher, or the reply that it is not found (removed
// meanwhile, or its add failed).
func (g target) get() (*arbiter.Watcher, *control.Reply) {
	if w := g.t.a.Watcher(g.name); w != nil {
		return w, nil
	}
	rep := control.Fail(g.t.notFound(g.name))
	return nil, &rep
}

// watcher returns the watcher the request's required "name" names.
func (t *Table) watcher(req control.Request) (*arbiter.Watcher, *control.Error) {
	name, e := req.String("name")
	if e != nil {
		return nil, e
	}
	w := t.a.Watcher(name)
	if w == nil {
		return nil, t.notFound(name)
	}
	return w, nil
}

// notFound is Circus's reply to an unknown watcher, with the nearest
// name when one is near.
func (t *Table) notFound(name string) *control.Error {
	ws := t.a.Watchers()
	names := make([]string, len(ws))
	for i, w := range ws {
		names[i] = w.Name()
	}
	return control.Errorf(control.MessageError, "program %s not found%s", name,
		suggest.Hint(name, names, func(s string) string { return s }))
}

// quote quotes a name as the command table's messages do, 'name'.
func quote(s string) string { return "'" + s + "'" }

// failure turns an error of the arbiter into Circus's error reply: errno 3
// for what the request got wrong (an unknown watcher or pid, a bad option
// value), 5 for a name taken, 6 for an operation that failed while the
// client waited.
func failure(err error) control.Reply {
	var ce *config.Error
	switch {
	case errors.Is(err, arbiter.ErrNotFound), errors.Is(err, arbiter.ErrNoProcess), errors.As(err, &ce):
		return control.Failf(control.MessageError, "%v", err)
	case errors.Is(err, arbiter.ErrExists):
		return control.Failf(control.CommandError, "%v", err)
	case errors.Is(err, arbiter.ErrShutdown), errors.Is(err, context.Canceled):
		return control.Failf(control.CommandError, "%v", err)
	}
	return control.Failf(control.BadMsgDataError, "%v", err)
}

// reply is OK() for a nil error, failure(err) otherwise.
func reply(err error, fields ...control.Field) control.Reply {
	if err != nil {
		return failure(err)
	}
	return control.OK(fields...)
}

func field(k string, v any) control.Field { return control.Field{Key: k, Value: v} }

var errNoQuit = fmt.Errorf("quit is not available here")
