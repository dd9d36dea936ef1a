package config

import (
	"errors"
	"maps"
	"slices"
	"strings"
)

// NewWatcher builds a watcher from options given at run time, as the
// control protocol's add command gives them: the keys and string values of a
// [watcher:NAME] section, read with the same rules, defaults and checks as
// a file. env is the watcher's environment (it may be nil). Errors are
// *Error values naming the section and key, without a file.
func NewWatcher(name string, options map[string]string, env map[string]string) (*Watcher, error) {
	return fromOptions(name, options, defaultFlapping(), env)
}

// With returns a copy of w with options changed, as the control protocol's
// set command changes them: w's own keys with options laid over them, read
// again with the rules of a file. w's environment and its flapping limit
// from a plugin are kept. w is not modified.
func (w *Watcher) With(options map[string]string) (*Watcher, error) {
	// w's options were substituted when it was loaded; only the new ones
	// are, now: substituting again would replace a $(circus.env.X) that a
	// variable's value brought in, which a file load never does.
	lookup := watcherLookup(w.Env)
	merged := maps.Clone(w.Options)
	if merged == nil {
		merged = map[string]string{}
	}
	for k, v := range options {
		merged[k] = Expand(v, lookup)
	}
	base := flapping{w.FlapAttempts, w.FlapWindow, w.FlapRetryIn, w.FlapMaxRetry}
	if base.attempts == 0 {
		// Turned off by check_flapping, which is among the keys read
		// again; a base of 0 would keep it off after the key is unset.
		base.attempts = defaultFlapAttempts
	}
	return readOptions(w.Name, merged, base, w.Env, func(string) (string, bool) { return "", false })
}

func fromOptions(name string, options map[string]string, flap flapping, env map[string]string) (*Watcher, error) {
	return readOptions(name, options, flap, env, watcherLookup(env))
}

// watcherLookup answers $(circus.env.X) from the arbiter's environment
// and env, as a file load does for a watcher.
func watcherLookup(env map[string]string) func(string) (string, bool) {
	osenv, osorder := osEnviron()
	lookup := envLookup{}
	lookup.add(osenv, osorder)
	lookup.add(env, slices.Sorted(maps.Keys(env)))
	return lookup.lookup
}

// readOptions reads options as a [watcher:name] section whose values
// lookup substitutes.
func readOptions(name string, options map[string]string, flap flapping, env map[string]string, lookup func(string) (string, bool)) (*Watcher, error) {
	d := &diag{}
	sec := &rawSection{name: "watcher:" + name, index: map[string]*rawKey{}}
	// Sorted, so that errors come in the same order every time.
	for _, k := range slices.Sorted(maps.Keys(options)) {
		rk := &rawKey{name: k, value: options[k]}
		sec.keys = append(sec.keys, rk)
		sec.index[k] = rk
	}
	w := readWatcher(newFields(d, sec, lookup), name, flap)
	w.Env = maps.Clone(env)
	if w.Env == nil {
		w.Env = map[string]string{}
	}
	if err := errors.Join(d.errs...); err != nil {
		return nil, err
	}
	return w, nil
}

// Fnmatch matches name against a shell pattern as Python's fnmatch does on
// POSIX ('*', '?', '[seq]', '[!seq]'), for Circus's glob matching of
// watcher names.
func Fnmatch(pattern, name string) bool { return fnmatch(pattern, name) }

// IsRlimit reports whether NAME of an rlimit_NAME key is a resource limit.
func IsRlimit(name string) bool {
	_, ok := rlimits[strings.ToLower(name)]
	return ok
}

// IsWatcherKey reports whether key is one that a [watcher:] section gives
// a meaning (cmd, numprocesses, rlimit_nofile, stdout_stream.class...);
// any other is a free-form option, kept for plugins.
func IsWatcherKey(key string) bool {
	for _, p := range []string{"rlimit_", "stdout_stream.", "stderr_stream.", "hooks."} {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return slices.Contains(watcherKeys, key)
}
