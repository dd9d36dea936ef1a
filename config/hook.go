package config

import (
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// defaultHookTimeout bounds a hook when hook_timeout is not set. Circus's
// hooks have no limit at all; a hung one freezes circusd.
const defaultHookTimeout = 30 * time.Second

// hookNames are the hooks Circus calls (reference circus-0.19.md §7.1).
var hookNames = []string{
	"before_start", "after_start", "before_spawn", "after_spawn", "before_stop", "after_stop",
	"before_signal", "after_signal", "before_reap", "after_reap", "extended_stats",
}

// IsHook reports whether name (without the hooks. prefix) is a hook Circus
// calls.
func IsHook(name string) bool { return slices.Contains(hookNames, name) }

// pythonName is a dotted Python name: pkg.module.func.
var pythonName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$`)

// hook reads hooks.NAME = COMMAND[, IGNORE_ERRORS]. The flag is the text
// after the last comma when it is a boolean, so that a command may hold
// commas of its own; Circus's callables have none, so its files read the
// same.
//
// Circus's hooks are Python callables, which cannot run here; a command
// and a callable are told apart by one rule: a dotted name (identifiers
// joined by dots, so no '/' and no space) that is not an executable on the
// arbiter's PATH is a callable, warned about and never run. Anything else
// is a command; "./notify.sh" or a full path is never taken for a
// callable.
func (f *fields) hook(w *Watcher, key string) {
	name := strings.TrimPrefix(key, "hooks.")
	v := strings.TrimSpace(f.vals[key])
	h := Hook{Command: v, Timeout: defaultHookTimeout}
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		if b, err := parseBool(strings.TrimSpace(v[i+1:])); err == nil {
			h.Command, h.IgnoreErrors = strings.TrimSpace(v[:i]), b
		} else if first, _, _ := strings.Cut(v, ","); pythonName.MatchString(strings.TrimSpace(first)) {
			// Circus's form, callable then flag, with a flag that is not one.
			f.errorf(key, "%v", err)
			h.Command = strings.TrimSpace(first)
		}
	}
	h.Python = pythonName.MatchString(h.Command) && !onPath(h.Command)
	if len(w.Hooks) == 0 {
		// Read with the first hook, so that a bad value is reported once.
		f.seconds("hook_timeout", &h.Timeout, false)
		if h.Timeout <= 0 {
			f.errorf("hook_timeout", "must be more than 0")
			h.Timeout = defaultHookTimeout
		}
	} else {
		for _, other := range w.Hooks {
			h.Timeout = other.Timeout
			break
		}
	}
	w.Hooks[name] = h
	switch {
	case h.Command == "":
		f.errorf(key, "empty: name the command to run")
	case !slices.Contains(hookNames, name):
		if s, ok := suggest.Closest(name, hookNames); ok {
			f.warnf(key, "no such hook, so it never runs; did you mean hooks.%s?", s)
		} else {
			f.warnf(key, "no such hook, so it never runs (hooks: %s)", strings.Join(hookNames, ", "))
		}
	case h.Python:
		f.warnf(key, "%s is a Python hook, which Ringmaster cannot run; ignored (a command runs: give a program's path)", strconv.Quote(h.Command))
	case name == "extended_stats":
		f.warnf(key, "not supported: Ringmaster's stats have no extended mode for a hook to add to; ignored")
	}
}

// onPath reports whether name is an executable file in a directory of the
// arbiter's PATH.
func onPath(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}
