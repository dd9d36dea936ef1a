package main

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ringmaster-dev/ringmaster/internal/suggest"
	"golang.org/x/sys/unix"
)

// hookNames are the hooks a watcher has; set refuses others before
// sending, as Circus's circusctl does. A copy of config's list: circusctl
// links no arbiter-side package.
var hookNames = []string{
	"before_start", "after_start", "before_stop", "after_stop",
	"before_spawn", "after_spawn", "before_signal", "after_signal",
	"before_reap", "after_reap", "extended_stats",
}

// convertOption turns set's VALUE for key into the JSON type the arbiter
// requires of it (§2.5), as Circus's circusctl does on its side: the
// arbiter checks types and refuses a numprocesses of "3". Keys Circus's
// circusctl does not know are refused here too.
//
// Two departures from Circus: env, which Circus's circusctl cannot send
// at all (it crashes), is K=V,K2=V2 here, the form options prints; and
// uid and gid go as numbers when they are numbers, which the arbiter takes
// either way.
func convertOption(key, val string) (any, error) {
	switch key {
	case "numprocesses", "max_retry", "max_age", "max_age_variance":
		return optInt(key, val)
	case "warmup_delay", "graceful_timeout", "retry_in":
		f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", key, val)
		}
		return f, nil
	case "send_hup", "stop_children", "shell", "copy_env", "respawn", "singleton",
		"close_child_stdin", "close_child_stdout", "close_child_stderr":
		return toBool(key, val)
	case "stop_signal":
		n, err := signum(val)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return n, nil
	case "uid", "gid":
		if n, err := strconv.Atoi(val); err == nil {
			return n, nil
		}
		return val, nil
	case "working_dir", "cmd", "args":
		return val, nil
	case "env":
		return parseEnv(val)
	case "hooks":
		hooks := map[string]any{}
		for h := range strings.SplitSeq(val, ",") {
			if h == "" {
				continue
			}
			name, target, ok := strings.Cut(h, ":")
			if !ok || strings.Contains(target, ":") {
				return nil, fmt.Errorf("hooks: %q is not HOOK:MODULE.FUNC", h)
			}
			if !slices.Contains(hookNames, name) {
				return nil, fmt.Errorf("hooks: unknown hook %q%s", name, suggest.Hint(name, hookNames, strconv.Quote))
			}
			hooks[name] = target
		}
		return hooks, nil
	}
	switch {
	case strings.HasPrefix(key, "stdout_stream.") || strings.HasPrefix(key, "stderr_stream."):
		_, sub, _ := strings.Cut(key, ".")
		if sub == "max_bytes" || sub == "backup_count" {
			return optInt(key, val)
		}
		return val, nil
	case strings.HasPrefix(key, "hooks."):
		if name := strings.TrimPrefix(key, "hooks."); !slices.Contains(hookNames, name) {
			return nil, fmt.Errorf("unknown hook %q%s", name, suggest.Hint(name, hookNames, strconv.Quote))
		}
		return val, nil
	case strings.HasPrefix(key, "rlimit_"):
		return optInt(key, val)
	}
	return nil, fmt.Errorf("unknown key %q%s", key, suggest.Hint(key, setKeys, strconv.Quote))
}

func optInt(key, val string) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(val))
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", key, val)
	}
	return n, nil
}

// toBool reads the words Circus's to_bool accepts, in any case.
func toBool(key, val string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(val)) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%s: %q is not a boolean (true, yes, on, 1, false, no, off, 0)", key, val)
}

// parseEnv reads K=V,K2=V2, trimming spaces around keys and values.
// Variables such as $HOME are left for the arbiter: they mean its
// environment, not circusctl's.
func parseEnv(val string) (map[string]any, error) {
	env := map[string]any{}
	for kv := range strings.SplitSeq(val, ",") {
		if strings.TrimSpace(kv) == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("env: %q is not KEY=VALUE", kv)
		}
		env[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return env, nil
}

// signalName is what Circus's to_signum reads: a name with or without SIG,
// in any case, and an optional +offset (RTMIN+1).
var signalName = regexp.MustCompile(`^(\w+?)(?:\+(\d+))?$`)

// signum resolves a signal number, name (TERM, SIGTERM, term) or
// real-time name with offset (SIGRTMIN+2), as Circus's to_signum does.
func signum(s string) (int, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	m := signalName.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("signal invalid: %s", s)
	}
	name := strings.ToUpper(m[1])
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	offset := 0
	if m[2] != "" {
		offset, _ = strconv.Atoi(m[2])
	}
	var n int
	switch name {
	case "SIGRTMIN":
		n = sigrtmin
	case "SIGRTMAX":
		n = sigrtmax
	default:
		n = int(unix.SignalNum(name))
	}
	if n == 0 {
		return 0, fmt.Errorf("signal invalid: %s", s)
	}
	return n + offset, nil
}

// sigrtmin and sigrtmax are glibc's (and Python's) real-time signal
// bounds on Linux; the kernel's 32 and 33 are reserved for threading.
const (
	sigrtmin = 34
	sigrtmax = 64
)
