package commands

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// setKeys are the keys set and add accept (§2.5), besides the prefixes
// stdout_stream., stderr_stream., hooks. and rlimit_.
var setKeys = []string{"numprocesses", "warmup_delay", "working_dir", "uid", "gid", "send_hup",
	"stop_signal", "stop_children", "shell", "env", "cmd", "args", "copy_env", "retry_in", "max_retry",
	"graceful_timeout", "stdout_stream", "stderr_stream", "max_age", "max_age_variance", "respawn",
	"singleton", "hooks", "close_child_stdin", "close_child_stdout", "close_child_stderr"}

// watcherOptions checks options as Circus's set and add do (§2.5) and
// turns them into the ini values of a [watcher:] section, which config
// then reads with a file's rules. env, when given, is returned apart. keys
// are the option names as sent, in order.
func watcherOptions(raw map[string]json.RawMessage) (opts map[string]string, env map[string]string, keys []string, e *control.Error) {
	opts = map[string]string{}
	keys = slices.Sorted(maps.Keys(raw))
	bad := func(format string, args ...any) (map[string]string, map[string]string, []string, *control.Error) {
		return nil, nil, nil, control.Errorf(control.MessageError, format, args...)
	}
	for _, k := range keys {
		v := raw[k]
		var val any
		d := json.NewDecoder(strings.NewReader(string(v)))
		d.UseNumber()
		if err := d.Decode(&val); err != nil {
			return bad("'%s' is not valid JSON", k)
		}
		switch {
		case !slices.Contains(setKeys, k) && !strings.HasPrefix(k, "stdout_stream.") && !strings.HasPrefix(k, "stderr_stream.") &&
			!strings.HasPrefix(k, "hooks.") && !strings.HasPrefix(k, "rlimit_"):
			return bad("unknown key '%s'%s", k, suggest.Hint(k, setKeys, quote))
		case slices.Contains([]string{"numprocesses", "max_retry", "max_age", "max_age_variance", "stop_signal"}, k):
			n, ok := val.(json.Number)
			if !ok || strings.ContainsAny(n.String(), ".eE") {
				return bad("'%s' isn't an integer", k)
			}
			opts[k] = n.String()
		case slices.Contains([]string{"warmup_delay", "retry_in", "graceful_timeout"}, k):
			n, ok := val.(json.Number)
			if !ok {
				return bad("'%s' isn't a number", k)
			}
			if k == "retry_in" {
				k = "flapping.retry_in"
			}
			opts[k] = n.String()
		case k == "uid" || k == "gid":
			switch x := val.(type) {
			case json.Number:
				if strings.ContainsAny(x.String(), ".eE") {
					return bad("'%s' isn't an integer or string", k)
				}
				opts[k] = x.String()
			case string:
				opts[k] = x
			default:
				return bad("'%s' isn't an integer or string", k)
			}
		case slices.Contains([]string{"send_hup", "shell", "copy_env", "respawn", "stop_children",
			"close_child_stdin", "close_child_stdout", "close_child_stderr"}, k):
			b, ok := val.(bool)
			if !ok {
				return bad("'%s' isn't a valid boolean", k)
			}
			opts[k] = strconv.FormatBool(b)
		case k == "singleton":
			switch x := val.(type) {
			case bool:
				opts[k] = strconv.FormatBool(x)
			case string:
				opts[k] = x
			default:
				return bad("'%s' isn't a valid boolean", k)
			}
		case k == "env":
			m, ok := val.(map[string]any)
			if !ok {
				return bad("'%s' isn't a valid object", k)
			}
			env = map[string]string{}
			for ek, ev := range m {
				s, ok := ev.(string)
				if !ok {
					return bad("'%s' isn't a string", ek)
				}
				env[ek] = s
			}
		case k == "hooks":
			m, ok := val.(map[string]any)
			if !ok {
				return bad("%s isn't a valid hook dict", pyRepr(val))
			}
			for hk, hv := range m {
				if !config.IsHook(hk) {
					return bad("Unknown hook '%s'", hk)
				}
				s, ok := hv.(string)
				if !ok {
					return bad("hook '%s' isn't a string", hk)
				}
				opts["hooks."+hk] = s
			}
		case strings.HasPrefix(k, "hooks."):
			if !config.IsHook(strings.TrimPrefix(k, "hooks.")) {
				return bad("Unknown hook '%s'", strings.TrimPrefix(k, "hooks."))
			}
			s, ok := val.(string)
			if !ok {
				return bad("'%s' isn't a string", k)
			}
			opts[k] = s
		case k == "stdout_stream" || k == "stderr_stream":
			m, ok := val.(map[string]any)
			if !ok {
				return bad("'%s' isn't a valid object", k)
			}
			if _, ok := m["class"]; !ok {
				return bad("'%s' must have a 'class' key", k)
			}
			for sk, sv := range m {
				s, e := scalar(k+"."+sk, sv)
				if e != nil {
					return nil, nil, nil, e
				}
				opts[k+"."+sk] = s
			}
		case strings.HasPrefix(k, "rlimit_"):
			if !config.IsRlimit(strings.TrimPrefix(k, "rlimit_")) {
				return bad("'%s' isn't a valid rlimit setting", k)
			}
			if val == nil {
				opts[k] = "" // Circus's null: infinity
				break
			}
			n, ok := val.(json.Number)
			if !ok || strings.ContainsAny(n.String(), ".eE") {
				return bad("%s rlimit value isn't a valid int", pyRepr(val))
			}
			opts[k] = n.String()
		default: // cmd, args, working_dir, stream options
			s, e := scalar(k, val)
			if e != nil {
				return nil, nil, nil, e
			}
			opts[k] = s
		}
	}
	return opts, env, keys, nil
}

// scalar renders a string, number or boolean option as its ini text.
func scalar(k string, v any) (string, *control.Error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		return strconv.FormatBool(x), nil
	}
	return "", control.Errorf(control.MessageError, "'%s' must be a string, a number or a boolean", k)
}

// objectProp returns the object property key's members (absent: nil).
func objectProp(req control.Request, key string) (map[string]json.RawMessage, *control.Error) {
	v, ok := req.Properties[key]
	if !ok || string(v) == "null" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if len(v) == 0 || v[0] != '{' || json.Unmarshal(v, &m) != nil {
		return nil, control.Errorf(control.MessageError, "'%s' property should be an object", key)
	}
	return m, nil
}

func cmdSet(t *Table, req control.Request) (job, *control.Error) {
	g, e := t.target(req)
	if e != nil {
		return job{}, e
	}
	raw, e := objectProp(req, "options")
	if e != nil {
		return job{}, e
	}
	if raw == nil {
		return job{}, control.Errorf(control.MessageError, "message invalid 'options' is missing")
	}
	opts, env, keys, e := watcherOptions(raw)
	if e != nil {
		return job{}, e
	}
	if w := t.a.Watcher(g.name); w != nil {
		// Checked now as well as when it runs, so that a bad value is an
		// error reply even without waiting.
		if _, err := w.Config().With(opts); err != nil {
			return job{}, control.Errorf(control.MessageError, "%v", err)
		}
	}
	return job{key: g.key(), async: true, run: func(ctx context.Context) control.Reply {
		w, nf := g.get()
		if nf != nil {
			return *nf
		}
		cur, err := w.Options(ctx)
		if err != nil {
			return failure(err)
		}
		nc, err := cur.With(opts)
		if err != nil {
			return failure(err)
		}
		if env != nil {
			nc.Env = env
		}
		return reply(t.a.Set(ctx, w.Name(), nc, keys))
	}}, nil
}

func cmdAdd(t *Table, req control.Request) (job, *control.Error) {
	name, e := req.String("name")
	if e != nil {
		return job{}, e
	}
	cmd, e := req.String("cmd")
	if e != nil {
		return job{}, e
	}
	args, e := req.StringOr("args", "")
	if e != nil {
		return job{}, e
	}
	start, e := req.BoolOr("start", false)
	if e != nil {
		return job{}, e
	}
	raw, e := objectProp(req, "options")
	if e != nil {
		return job{}, e
	}
	opts, env, _, e := watcherOptions(raw)
	if e != nil {
		return job{}, e
	}
	if owner := t.a.Config().Circus.EndpointOwner; owner != "" && opts["uid"] != owner {
		// Otherwise anyone who can reach the socket could run commands
		// as the arbiter's user, which is what endpoint_owner prevents.
		return job{}, control.Errorf(control.MessageError, "uid does not match endpoint_owner")
	}
	if strings.ContainsAny(name, "[]") || strings.TrimSpace(name) == "" {
		return job{}, control.Errorf(control.MessageError, "invalid watcher name %q", name)
	}
	opts["cmd"] = cmd
	if args != "" {
		opts["args"] = args
	}
	wc, err := config.NewWatcher(name, opts, env)
	if err != nil {
		return job{}, control.Errorf(control.MessageError, "%v", err)
	}
	var w *arbiter.Watcher
	// The watcher is created in the command's turn, before the reply,
	// waiting or not, as Circus's add does: a taken name is an error
	// reply and a command sent next finds it. Only the start may run on.
	return job{key: strings.ToLower(name), async: true, adds: true, check: func(ctx context.Context) *control.Error {
		var err error
		if w, err = t.a.Add(ctx, wc, false); err != nil {
			if errors.Is(err, arbiter.ErrExists) {
				return control.Errorf(control.CommandError, "'%s' already exist", name)
			}
			return failure(err).Err
		}
		return nil
	}, run: func(ctx context.Context) control.Reply {
		if !start {
			return control.OK()
		}
		if err := w.Start(ctx); err != nil {
			return failure(err)
		}
		ps, err := pids(ctx, w)
		return reply(err, field("started", ps), field("kept", []int{}))
	}}, nil
}

func cmdRm(t *Table, req control.Request) (job, *control.Error) {
	g, e := t.target(req)
	if e != nil {
		return job{}, e
	}
	nostop, e := req.BoolOr("nostop", false)
	if e != nil {
		return job{}, e
	}
	return job{key: g.key(), async: true, run: func(ctx context.Context) control.Reply {
		if _, nf := g.get(); nf != nil {
			return *nf
		}
		return reply(t.a.Remove(ctx, g.name, nostop))
	}}, nil
}

// cmdReloadConfig reads the file before it answers, even without waiting:
// a file that does not load is an error reply, and nothing changes.
func cmdReloadConfig(t *Table, _ control.Request) (job, *control.Error) {
	var cfg *config.Config
	return job{key: allKey, async: true, check: func(context.Context) *control.Error {
		var err error
		if cfg, err = config.Load(t.a.Config().File); err != nil {
			return control.Errorf(control.MessageError, "reloadconfig: %v; nothing was changed", strings.ReplaceAll(err.Error(), "\n", "; "))
		}
		return nil
	}, run: func(ctx context.Context) control.Reply {
		return reply(t.a.Reload(ctx, cfg))
	}}, nil
}

func cmdQuit(t *Table, req control.Request) (job, *control.Error) {
	waiting, e := req.BoolOr("waiting", false)
	if e != nil {
		return job{}, e
	}
	if t.opts.Quit == nil {
		return job{}, control.Errorf(control.CommandError, "%v", errNoQuit)
	}
	return now(func(ctx context.Context) control.Reply {
		t.opts.Quit()
		if waiting && t.opts.Stopped != nil {
			select {
			case <-t.opts.Stopped:
			case <-ctx.Done():
			}
		}
		return control.OK()
	})
}

// pyRepr renders a decoded JSON value roughly as Python's repr does in
// Circus's messages: strings in single quotes, numbers and the rest as JSON.
func pyRepr(v any) string {
	if s, ok := v.(string); ok {
		return "'" + strings.ReplaceAll(s, "'", `\'`) + "'"
	}
	b, _ := json.Marshal(v)
	return string(b)
}
