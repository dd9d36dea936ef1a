package commands

import (
	"context"
	"errors"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/sockets"
	"github.com/ringmaster-dev/ringmaster/stats"
)

// now builds a job that only reads: it runs at once, beside anything
// queued.
func now(run func(ctx context.Context) control.Reply) (job, *control.Error) {
	return job{run: run}, nil
}

func cmdList(t *Table, req control.Request) (job, *control.Error) {
	if !req.Has("name") {
		return now(func(context.Context) control.Reply {
			names := []string{}
			for _, w := range t.a.Watchers() {
				names = append(names, strings.ToLower(w.Name()))
			}
			slices.Sort(names)
			return control.OK(field("watchers", names))
		})
	}
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	return now(func(ctx context.Context) control.Reply {
		ps, err := pids(ctx, w)
		return reply(err, field("pids", ps))
	})
}

// cmdStatus is Circus's status. With "details": true (Ringmaster's; our
// circusctl sends it) the reply also says what each watcher does or waits
// for beyond its state ("flapping, retry 1 of 5 in 6.2s", "backoff:
// EMFILE, retry in 400ms"): "details" by name for all, "detail" for one;
// and all an operator acts on (workers ready, uptime, restarts, the last
// exit: see status.go) under "watchers" by name, or "watcher" for one.
// Circus's own replies are unchanged without it.
func cmdStatus(t *Table, req control.Request) (job, *control.Error) {
	details, e := req.BoolOr("details", false)
	if e != nil {
		return job{}, e
	}
	if !req.Has("name") {
		return now(func(ctx context.Context) control.Reply {
			var st, dt, all control.Object
			for _, w := range t.sorted() {
				s, err := w.Status(ctx)
				if err != nil {
					return failure(err)
				}
				st = append(st, field(w.Name(), s.State.String()))
				if s.Detail != "" {
					dt = append(dt, field(w.Name(), s.Detail))
				}
				all = append(all, field(w.Name(), watcherDetails(s, time.Now(), false)))
			}
			if details {
				return control.OK(field("statuses", st), field("details", dt), field("watchers", all))
			}
			return control.OK(field("statuses", st))
		})
	}
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	return now(func(ctx context.Context) control.Reply {
		s, err := w.Status(ctx)
		if err != nil {
			return failure(err)
		}
		rep := control.State(s.State.String())
		if details {
			rep.Fields = control.Object{field("detail", s.Detail), field("watcher", watcherDetails(s, time.Now(), true))}
		}
		return rep
	})
}

// sorted is the watchers by lower-cased name, the order of Circus's list.
func (t *Table) sorted() []*arbiter.Watcher {
	ws := slices.Clone(t.a.Watchers())
	slices.SortFunc(ws, func(a, b *arbiter.Watcher) int {
		return strings.Compare(strings.ToLower(a.Name()), strings.ToLower(b.Name()))
	})
	return ws
}

func cmdNumProcesses(t *Table, req control.Request) (job, *control.Error) {
	name, _ := req.StringOr("name", "") // echoed as sent, as Circus does
	if !req.Has("name") {
		return now(func(ctx context.Context) control.Reply {
			n := 0
			for _, w := range t.a.Watchers() {
				ps, err := pids(ctx, w)
				if err != nil {
					return failure(err)
				}
				n += len(ps)
			}
			return control.OK(field("numprocesses", n))
		})
	}
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	return now(func(ctx context.Context) control.Reply {
		ps, err := pids(ctx, w)
		return reply(err, field("numprocesses", len(ps)), field("watcher_name", name))
	})
}

func cmdNumWatchers(t *Table, _ control.Request) (job, *control.Error) {
	return now(func(context.Context) control.Reply {
		return control.OK(field("numwatchers", len(t.a.Watchers())))
	})
}

// options renders a watcher's options as Circus's options command does:
// every name, sorted, with Circus's types (null for what is unset).
func options(o *config.Watcher) map[string]any {
	opt := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	ident := func(raw string) any {
		if raw == "" {
			return nil
		}
		if n, err := strconv.Atoi(raw); err == nil {
			return n
		}
		return raw
	}
	stream := func(m map[string]string) map[string]string {
		if m == nil {
			return map[string]string{}
		}
		return m
	}
	env := o.Env
	if env == nil {
		env = map[string]string{}
	}
	m := map[string]any{}
	// Free-form keys, as Circus lists them beside its own.
	for k, v := range o.Options {
		if !config.IsWatcherKey(k) {
			m[k] = v
		}
	}
	maps.Copy(m, map[string]any{
		"numprocesses":       o.NumProcesses,
		"warmup_delay":       seconds(o.WarmupDelay),
		"working_dir":        opt(o.WorkingDir),
		"uid":                ident(o.User),
		"gid":                ident(o.Group),
		"send_hup":           o.SendHup,
		"stop_signal":        int(o.StopSignal),
		"stop_children":      o.StopChildren,
		"shell":              o.Shell,
		"shell_args":         opt(o.ShellArgs),
		"env":                env,
		"max_retry":          o.MaxRetry,
		"cmd":                o.Cmd,
		"args":               opt(o.Args),
		"respawn":            o.Respawn,
		"graceful_timeout":   seconds(o.GracefulTimeout),
		"executable":         opt(o.Executable),
		"use_sockets":        o.UseSockets,
		"priority":           o.Priority,
		"copy_env":           o.CopyEnv,
		"singleton":          o.Singleton,
		"stdout_stream_conf": stream(o.StdoutStream),
		"on_demand":          o.OnDemand,
		"stderr_stream_conf": stream(o.StderrStream),
		"max_age":            int(o.MaxAge / time.Second),
		"max_age_variance":   int(o.MaxAgeVariance / time.Second),
		"close_child_stdin":  o.CloseChildStdin,
		"close_child_stdout": o.CloseChildStdout,
		"close_child_stderr": o.CloseChildStderr,
	})
	if o.StopSignal == 0 {
		m["stop_signal"] = 15
	}
	return m
}

// seconds renders a duration as Circus's floats do: 30.0, 0.5.
func seconds(d time.Duration) float64 { return d.Seconds() }

// sortedObject is m with its keys sorted, as Circus's options reply has
// them.
func sortedObject(m map[string]any) control.Object {
	var o control.Object
	for _, k := range slices.Sorted(maps.Keys(m)) {
		o = append(o, field(k, m[k]))
	}
	return o
}

func cmdOptions(t *Table, req control.Request) (job, *control.Error) {
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	return now(func(ctx context.Context) control.Reply {
		o, err := w.Options(ctx)
		if err != nil {
			return failure(err)
		}
		return control.OK(field("options", sortedObject(options(o))))
	})
}

func cmdGet(t *Table, req control.Request) (job, *control.Error) {
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	keys, e := req.Strings("keys")
	if e != nil {
		return job{}, e
	}
	return now(func(ctx context.Context) control.Reply {
		o, err := w.Options(ctx)
		if err != nil {
			return failure(err)
		}
		all := options(o)
		var out control.Object
		for _, k := range keys {
			v, ok := all[k]
			if !ok {
				return control.Failf(control.MessageError, "'%s' option not found", k)
			}
			out = append(out, field(k, v))
		}
		return control.OK(field("options", out))
	})
}

func cmdGlobalOptions(t *Table, req control.Request) (job, *control.Error) {
	name, e := req.StringOr("option", "")
	if e != nil {
		return job{}, e
	}
	if name == "" {
		// The docs call it keys; accept that too.
		if keys, e := req.StringsOr("keys", nil); e == nil && len(keys) == 1 {
			name = keys[0]
		}
	}
	return now(func(context.Context) control.Reply {
		c := t.a.Config().Circus
		all := control.Object{
			field("endpoint", c.Endpoint),
			field("stats_endpoint", c.StatsEndpoint),
			field("pubsub_endpoint", c.PubsubEndpoint),
			field("check_delay", c.CheckDelay.Seconds()),
			field("multicast_endpoint", c.MulticastEndpoint),
		}
		if name == "" {
			return control.OK(field("options", all))
		}
		for _, f := range all {
			if f.Key == name {
				return control.OK(field("options", control.Object{f}))
			}
		}
		return control.Failf(control.MessageError, "'%s' not an existing option", name)
	})
}

func cmdListSockets(t *Table, _ control.Request) (job, *control.Error) {
	return now(func(context.Context) control.Reply {
		socks := slices.SortedFunc(slices.Values(t.a.Sockets()), func(a, b *sockets.Socket) int { return a.FD() - b.FD() })
		out := []control.Object{}
		for _, s := range socks {
			o := control.Object{field("fd", s.FD()), field("name", s.Name()), field("backlog", s.Spec().Backlog)}
			if s.Spec().Path != "" {
				o = append(o, field("path", s.Spec().Path))
			} else {
				o = append(o, field("host", s.Host()), field("port", s.Port()))
			}
			out = append(out, o)
		}
		return control.OK(field("sockets", out))
	})
}

// infoOf samples every worker of w: {"<pid>": info}, oldest first.
func (t *Table) infoOf(ctx context.Context, w *arbiter.Watcher, extended bool) (control.Object, error) {
	_, procs, err := w.Info(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(procs, func(a, b arbiter.ProcessInfo) int { return a.Started.Compare(b.Started) })
	out := control.Object{}
	for _, p := range procs {
		in, err := t.sampler.Process(stats.Process{Pid: p.Pid, Wid: p.Wid, Started: p.Started}, extended)
		if errors.Is(err, stats.ErrNoProcess) {
			continue // gone since Info
		}
		if err != nil {
			return nil, err
		}
		out = append(out, field(strconv.Itoa(p.Pid), in))
	}
	return out, nil
}

func cmdStats(t *Table, req control.Request) (job, *control.Error) {
	extended, e := req.BoolOr("extended", false)
	if e != nil {
		return job{}, e
	}
	if !req.Has("name") {
		return now(func(ctx context.Context) control.Reply {
			infos := control.Object{}
			for _, w := range t.a.Watchers() {
				in, err := t.infoOf(ctx, w, extended)
				if err != nil {
					return failure(err)
				}
				infos = append(infos, field(w.Name(), in))
			}
			return control.OK(field("infos", infos))
		})
	}
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	name, _ := req.String("name") // echoed as sent, as Circus does
	if !req.Has("process") {
		return now(func(ctx context.Context) control.Reply {
			in, err := t.infoOf(ctx, w, extended)
			return reply(err, field("name", name), field("info", in))
		})
	}
	pid, e := intish(req, "process", 0)
	if e != nil {
		return job{}, e
	}
	return now(func(ctx context.Context) control.Reply {
		_, procs, err := w.Info(ctx)
		if err != nil {
			return failure(err)
		}
		i := slices.IndexFunc(procs, func(p arbiter.ProcessInfo) bool { return p.Pid == int(pid) })
		if i < 0 {
			return control.Failf(control.MessageError, "process %d not found in '%s'", pid, name)
		}
		p := procs[i]
		in, err := t.sampler.Process(stats.Process{Pid: p.Pid, Wid: p.Wid, Started: p.Started}, extended)
		if errors.Is(err, stats.ErrNoProcess) {
			return control.Failf(control.MessageError, "No such process (stopped?)")
		}
		return reply(err, field("process", pid), field("info", in))
	})
}

func cmdDstats(t *Table, _ control.Request) (job, *control.Error) {
	return now(func(context.Context) control.Reply {
		in, err := t.sampler.Process(stats.Process{Pid: os.Getpid()}, true)
		return reply(err, field("info", in))
	})
}

func cmdListen(*Table, control.Request) (job, *control.Error) {
	return job{}, control.Errorf(control.MessageError, "invalid message. use a pub/sub socket")
}

func cmdIPython(*Table, control.Request) (job, *control.Error) {
	return job{}, control.Errorf(control.CommandError, "ipython is not supported: Ringmaster has no Python interpreter to open a shell in")
}
