package commands

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// match returns the watchers the request's name selects with its match
// method, as Circus's start, stop and restart do: the pattern and names
// lower-cased; glob as fnmatch (whole name), regex as Python's re.match
// (anchored at the start only), simple the exact name. They come in start
// order (priority descending). literal is the lower-cased name when it can
// match one name only (simple, or a glob without wildcards), "" otherwise.
// No name: named is false, meaning all.
func (t *Table) match(req control.Request) (ws []*arbiter.Watcher, literal string, named bool, e *control.Error) {
	name, e := req.StringOr("name", "")
	if e != nil || !req.Has("name") {
		return nil, "", false, e
	}
	how, e := req.StringOr("match", "glob")
	if e != nil {
		return nil, "", true, e
	}
	var ok func(string) bool
	pattern := strings.ToLower(name)
	switch how {
	case "simple":
		ok, literal = func(n string) bool { return n == pattern }, pattern
	case "glob":
		ok = func(n string) bool { return config.Fnmatch(pattern, n) }
		if !strings.ContainsAny(pattern, "*?[") {
			literal = pattern
		}
	case "regex":
		re, err := config.MatchRegexp(pattern)
		if err != nil {
			return nil, "", true, control.Errorf(control.MessageError, "bad regex %q: %v", name, err)
		}
		ok = re.MatchString
	default:
		return nil, "", true, control.Errorf(control.MessageError, "unknown match method %s%s", how,
			suggest.Hint(how, []string{"glob", "regex", "simple"}, func(s string) string { return s }))
	}
	for _, w := range t.a.Watchers() {
		if ok(strings.ToLower(w.Name())) {
			ws = append(ws, w)
		}
	}
	return ws, literal, true, nil
}

// pids lists a watcher's workers that are not on their way out, oldest
// first.
func pids(ctx context.Context, w *arbiter.Watcher) ([]int, error) {
	_, procs, err := w.Info(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(procs, func(a, b arbiter.ProcessInfo) int { return a.Started.Compare(b.Started) })
	out := []int{}
	for _, p := range procs {
		if !p.Stopping {
			out = append(out, p.Pid)
		}
	}
	return out, nil
}

// changes is Circus's {"stopped", "started", "kept"} of a restart or reload.
func changes(before, after []int, withStopped bool) control.Object {
	var stopped, started, kept []int
	stopped, started, kept = []int{}, []int{}, []int{}
	for _, p := range before {
		if slices.Contains(after, p) {
			kept = append(kept, p)
		} else {
			stopped = append(stopped, p)
		}
	}
	for _, p := range after {
		if !slices.Contains(before, p) {
			started = append(started, p)
		}
	}
	if !withStopped {
		return control.Object{field("started", started), field("kept", kept)}
	}
	return control.Object{field("stopped", stopped), field("started", started), field("kept", kept)}
}

// each runs f on every watcher of ws, in order, and joins the errors.
func each(ctx context.Context, ws []*arbiter.Watcher, f func(context.Context, *arbiter.Watcher) error) error {
	var errs []error
	for _, w := range ws {
		if err := f(ctx, w); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// lifecycle builds start, stop and restart: one matched watcher answers
// info when waited for, several are handled in priority order (stop: the
// reverse), none named means all (start: the autostart ones).
func lifecycle(t *Table, req control.Request, one func(ctx context.Context, w *arbiter.Watcher) (control.Reply, error),
	all func(ctx context.Context) error, reverse bool) (job, *control.Error) {
	ws, literal, named, e := t.match(req)
	if e != nil {
		return job{}, e
	}
	if !named {
		return job{key: allKey, async: true, run: func(ctx context.Context) control.Reply { return reply(all(ctx)) }}, nil
	}
	var g target
	switch {
	case len(ws) == 1:
		g = target{t: t, name: ws[0].Name()}
	case len(ws) == 0 && literal != "" && t.isAdding(literal):
		g = target{t: t, name: literal} // an add queued before creates it
	case len(ws) == 0 && literal != "" && t.a.Watcher(literal) != nil:
		// Added between the match and the look at the pending adds: the
		// add's check ends (the watcher exists) before it stops pending.
		g = target{t: t, name: t.a.Watcher(literal).Name()}
	case len(ws) == 0:
		name, _ := req.String("name")
		return job{}, t.notFound(name)
	}
	if g.t != nil {
		return job{key: g.key(), async: true, run: func(ctx context.Context) control.Reply {
			w, nf := g.get()
			if nf != nil {
				return *nf
			}
			rep, err := one(ctx, w)
			if err != nil {
				return failure(err)
			}
			return rep
		}}, nil
	}
	if reverse {
		slices.Reverse(ws)
	}
	return job{key: allKey, async: true, run: func(ctx context.Context) control.Reply {
		return reply(each(ctx, ws, func(ctx context.Context, w *arbiter.Watcher) error {
			_, err := one(ctx, w)
			return err
		}))
	}}, nil
}

func cmdStart(t *Table, req control.Request) (job, *control.Error) {
	return lifecycle(t, req, func(ctx context.Context, w *arbiter.Watcher) (control.Reply, error) {
		before, err := pids(ctx, w)
		if err != nil {
			return control.Reply{}, err
		}
		if err := w.Start(ctx); err != nil {
			return control.Reply{}, err
		}
		after, err := pids(ctx, w)
		return control.OK(field("info", changes(before, after, false))), err
	}, t.a.StartAll, false)
}

// cmdStop overtakes what is queued on its watchers (see the package
// documentation): an operator's stop is obeyed at once, not after a start
// that may retry for minutes.
func cmdStop(t *Table, req control.Request) (job, *control.Error) {
	j, e := lifecycle(t, req, func(ctx context.Context, w *arbiter.Watcher) (control.Reply, error) {
		return control.OK(field("info", nil)), w.Stop(ctx)
	}, t.a.StopAll, true)
	j.overtakes = true
	return j, e
}

// restart replaces every worker, new ones first: Ringmaster's restart is
// Circus's graceful reload, so that a restart under load fails no request.
// A stopped watcher is started.
func cmdRestart(t *Table, req control.Request) (job, *control.Error) {
	return lifecycle(t, req, func(ctx context.Context, w *arbiter.Watcher) (control.Reply, error) {
		return replace(ctx, w, w.Restart)
	}, t.a.Restart, false)
}

// reloadOne reloads w gracefully (new workers first, or one at a time with
// sequential) or, not graceful, stops and starts it.
func reloadOne(ctx context.Context, w *arbiter.Watcher, graceful, sequential bool) (control.Reply, error) {
	return replace(ctx, w, func(ctx context.Context) error {
		if graceful {
			return w.Reload(ctx, sequential)
		}
		if err := w.Stop(ctx); err != nil {
			return err
		}
		return w.Start(ctx)
	})
}

// replace runs f and answers Circus's info of what it changed.
func replace(ctx context.Context, w *arbiter.Watcher, f func(context.Context) error) (control.Reply, error) {
	before, err := pids(ctx, w)
	if err != nil {
		return control.Reply{}, err
	}
	if err = f(ctx); err != nil {
		return control.Reply{}, err
	}
	after, err := pids(ctx, w)
	return control.OK(field("info", changes(before, after, true))), err
}

func cmdReload(t *Table, req control.Request) (job, *control.Error) {
	graceful, e := req.BoolOr("graceful", true)
	if e != nil {
		return job{}, e
	}
	sequential, e := req.BoolOr("sequential", false)
	if e != nil {
		return job{}, e
	}
	if !req.Has("name") {
		return job{key: allKey, async: true, run: func(ctx context.Context) control.Reply {
			if !graceful {
				return reply(t.a.Restart(ctx))
			}
			return reply(t.a.ReloadAll(ctx, sequential))
		}}, nil
	}
	g, e := t.target(req)
	if e != nil {
		return job{}, e
	}
	return job{key: g.key(), async: true, run: func(ctx context.Context) control.Reply {
		w, nf := g.get()
		if nf != nil {
			return *nf
		}
		rep, err := reloadOne(ctx, w, graceful, sequential)
		if err != nil {
			return failure(err)
		}
		return rep
	}}, nil
}

// cmdIncr is incr (sign 1) and decr (-1).
func cmdIncr(t *Table, req control.Request, sign int) (job, *control.Error) {
	g, e := t.target(req)
	if e != nil {
		return job{}, e
	}
	nb, e := intish(req, "nb", 1)
	if e != nil {
		return job{}, e
	}
	if nb < 0 {
		return job{}, control.Errorf(control.MessageError, "message invalid 'nb' must be a positive integer")
	}
	if w := t.a.Watcher(g.name); w != nil && w.Config().Singleton {
		// Circus answers this at once, waiting or not.
		return now(func(ctx context.Context) control.Reply {
			o, err := w.Options(ctx)
			return reply(err, field("numprocesses", o.NumProcesses), field("singleton", true))
		})
	}
	return job{key: g.key(), async: true, run: func(ctx context.Context) control.Reply {
		w, nf := g.get()
		if nf != nil {
			return *nf
		}
		o, err := w.Options(ctx)
		if err != nil {
			return failure(err)
		}
		if o.Singleton {
			return control.OK(field("numprocesses", o.NumProcesses), field("singleton", true))
		}
		n, err := w.Incr(ctx, sign*int(nb))
		return reply(err, field("numprocesses", n))
	}}, nil
}

func cmdKill(t *Table, req control.Request) (job, *control.Error) {
	g, e := t.target(req)
	if e != nil {
		return job{}, e
	}
	pid, e := intish(req, "pid", 0)
	if e != nil {
		return job{}, e
	}
	var sig syscall.Signal
	if req.Has("signum") {
		if sig, e = signum(req, "signum"); e != nil {
			return job{}, e
		}
	}
	timeout, e := floatish(req, "graceful_timeout", 0)
	if e != nil {
		return job{}, e
	}
	if timeout < 0 {
		return job{}, control.Errorf(control.MessageError, "message invalid 'graceful_timeout' must not be negative")
	}
	return job{key: g.key(), async: true, overtakes: true, run: func(ctx context.Context) control.Reply {
		w, nf := g.get()
		if nf != nil {
			return *nf
		}
		err := w.Kill(ctx, int(pid), sig, time.Duration(timeout*float64(time.Second)))
		if errors.Is(err, arbiter.ErrNoProcess) {
			err = nil // Circus answers ok for a pid that is gone
		}
		return reply(err)
	}}, nil
}

func cmdSignal(t *Table, req control.Request) (job, *control.Error) {
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	sig, e := signum(req, "signum")
	if e != nil {
		return job{}, e
	}
	pid, e := intish(req, "pid", 0)
	if e != nil {
		return job{}, e
	}
	childpid, e := intish(req, "childpid", 0)
	if e != nil {
		return job{}, e
	}
	children, e := req.BoolOr("children", false)
	if e != nil {
		return job{}, e
	}
	recursive, e := req.BoolOr("recursive", false)
	if e != nil {
		return job{}, e
	}
	if childpid != 0 && pid == 0 {
		return job{}, control.Errorf(control.MessageError, "message invalid 'childpid' needs 'pid'")
	}
	return job{run: func(ctx context.Context) control.Reply {
		if childpid != 0 {
			return reply(w.SignalChild(ctx, int(pid), int(childpid), sig))
		}
		return reply(w.Signal(ctx, int(pid), sig, children, recursive))
	}}, nil
}

// intish reads an integer property that Circus's own circusctl sends as a
// string (kill's pid): a JSON integer or a string of one.
func intish(req control.Request, key string, def int64) (int64, *control.Error) {
	if s, e := req.String(key); e == nil {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return 0, control.Errorf(control.MessageError, "message invalid '%s' must be an integer", key)
		}
		return n, nil
	}
	return req.IntOr(key, def)
}

// floatish is intish for a number (kill's graceful_timeout).
func floatish(req control.Request, key string, def float64) (float64, *control.Error) {
	if s, e := req.String(key); e == nil {
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return 0, control.Errorf(control.MessageError, "message invalid '%s' must be a number", key)
		}
		return f, nil
	}
	return req.FloatOr(key, def)
}

// signum reads a signal as Circus accepts one: a number, or a name with or
// without SIG ("HUP", "SIGHUP", "hup").
func signum(req control.Request, key string) (syscall.Signal, *control.Error) {
	if n, e := req.Int(key); e == nil {
		if n <= 0 || n > 64 {
			return 0, control.Errorf(control.MessageError, "signal invalid")
		}
		return syscall.Signal(n), nil
	}
	s, e := req.String(key)
	if e != nil {
		return 0, e
	}
	sig, err := config.ParseSignal(s)
	if err != nil {
		return 0, control.Errorf(control.MessageError, "signal invalid")
	}
	return sig, nil
}
