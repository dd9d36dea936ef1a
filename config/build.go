package config

import (
	"fmt"
	"strings"

	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// build turns the merged sections into a Config: defaults, then the
// sections in the order that lets each see what it depends on ([env] before
// everything, plugins before watchers for the flapping limit, sockets before
// the watchers that reference them).
func build(name string, r *raw, d *diag) *Config {
	c := Defaults()
	c.File = name
	for _, s := range r.sections {
		c.pos[posKey(s.name, "")] = s.pos
		for _, k := range s.keys {
			c.pos[posKey(s.name, k.name)] = k.pos
		}
	}

	osenv, osorder := osEnviron()
	osLookup := envLookup{}
	osLookup.add(osenv, osorder)

	var circus, global *rawSection
	var envs []*envSection
	var socks, plugins, watchers []*rawSection
	for _, s := range r.sections {
		if len(s.keys) == 0 {
			continue // Circus skips empty sections (its empty_section test).
		}
		kind, _, _ := strings.Cut(s.name, ":")
		switch {
		case s.name == "circus":
			circus = s
		case s.name == "env":
			global = s
		case strings.HasPrefix(s.name, "env:"):
			envs = append(envs, &envSection{sec: s, patterns: envPatterns(s.name)})
		case strings.HasPrefix(s.name, "watcher:"):
			watchers = append(watchers, s)
		case strings.HasPrefix(s.name, "socket:"):
			socks = append(socks, s)
		case strings.HasPrefix(s.name, "plugin:"):
			plugins = append(plugins, s)
		default:
			msg := "unknown section, ignored"
			if g, ok := suggest.Closest(kind, []string{"circus", "env", "watcher", "socket", "plugin"}); ok {
				msg += "; did you mean [" + g + "...]?"
			} else if strings.ToLower(kind) != kind {
				msg += " (section kinds are lower-case)"
			}
			d.warnf(s.pos, s.name, "", "%s", msg)
		}
	}

	// [env] may use $(circus.env.X) of the arbiter's environment only;
	// everything else also sees [env].
	lookup := osLookup.clone()
	if global != nil {
		e := readEnv(global, nil, osenv, osLookup.lookup)
		c.Env = e.vals
		lookup.add(e.vals, e.order)
	}
	if circus != nil {
		readCircus(newFields(d, circus, lookup.lookup), &c.Circus)
	}
	for i, e := range envs {
		envs[i] = readEnv(e.sec, e.patterns, osenv, lookup.lookup)
	}

	socketAt := map[string]*rawSection{}
	for _, s := range socks {
		sname := strings.ToLower(strings.TrimPrefix(s.name, "socket:"))
		if !uniqueName(d, s, "socket", sname, socketAt) {
			continue
		}
		c.Sockets = append(c.Sockets, readSocket(newFields(d, s, lookup.lookup), sname))
	}

	flap := defaultFlapping()
	for _, s := range plugins {
		pname := strings.TrimPrefix(s.name, "plugin:")
		if pname == "" {
			d.errorf(s.pos, s.name, "", "a plugin needs a name: [plugin:NAME]")
			continue
		}
		c.Plugins = append(c.Plugins, readPlugin(newFields(d, s, lookup.lookup), pname, &flap))
	}

	watcherAt := map[string]*rawSection{}
	scaled := map[string]string{} // socket → the autoscaled watcher reading it
	for _, s := range watchers {
		wname := strings.TrimPrefix(s.name, "watcher:")
		if !uniqueName(d, s, "watcher", strings.ToLower(wname), watcherAt) {
			continue
		}
		env := map[string]string{}
		wlookup := lookup.clone()
		for k, v := range c.Env {
			env[k] = v
		}
		for _, e := range envs {
			if e.matches(wname) {
				for _, k := range e.order {
					env[k] = e.vals[k]
				}
				wlookup.add(e.vals, e.order)
			}
		}
		f := newFields(d, s, wlookup.lookup)
		w := readWatcher(f, wname, flap)
		w.Env = env
		checkSocketRefs(f, w, socketAt)
		checkAutoscale(f, w, c.Sockets, scaled)
		c.Watchers = append(c.Watchers, w)
	}

	for _, s := range r.sections {
		if strings.HasPrefix(s.name, "watcher:") || strings.HasPrefix(s.name, "socket:") || strings.HasPrefix(s.name, "plugin:") {
			for _, p := range s.repeats {
				d.warnf(p, s.name, "", "repeated section merged into the one at %s:%d (keys set first win)", s.pos.File, s.pos.Line)
			}
		}
	}
	c.Warnings = d.warnings
	return c
}

// uniqueName records the section s under name in seen, reporting an empty
// name or one already taken by a section that differs only in case.
func uniqueName(d *diag, s *rawSection, kind, name string, seen map[string]*rawSection) bool {
	if name == "" {
		d.errorf(s.pos, s.name, "", "a %s needs a name: [%s:NAME]", kind, kind)
		return false
	}
	if prev, dup := seen[name]; dup {
		d.errorf(s.pos, s.name, "", "%s name clashes with [%s] at %s:%d: %s names are not case-sensitive",
			kind, prev.name, prev.pos.File, prev.pos.Line, kind)
		return false
	}
	seen[name] = s
	return true
}

// envPatterns splits the comma-separated patterns of [env:PATTERNS].
func envPatterns(section string) []string {
	var out []string
	for _, p := range strings.Split(strings.TrimPrefix(section, "env:"), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// checkSocketRefs reports $(circus.sockets.NAME) references to sockets that
// no section defines, and an unknown stdin_socket: Circus would pass the
// text on verbatim and the worker would fail at start-up.
func checkSocketRefs(f *fields, w *Watcher, socketAt map[string]*rawSection) {
	for _, key := range []string{"cmd", "args", "shell_args"} {
		v, _ := f.get(key)
		for _, ref := range references(v) {
			name, ok := strings.CutPrefix(ref, "sockets.")
			if ok && socketAt[name] == nil {
				f.errorf(key, "%s refers to [socket:%s], which is not defined", refText(name), name)
			}
		}
	}
	if w.StdinSocket != "" && socketAt[w.StdinSocket] == nil {
		f.errorf("stdin_socket", "[socket:%s] is not defined", w.StdinSocket)
	}
}

func refText(name string) string { return fmt.Sprintf("$(circus.sockets.%s)", name) }
