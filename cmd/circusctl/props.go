package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The functions below build the properties each command sends from its
// parsed command line; noProps is for the commands that send none.

func noProps(*parsed) (map[string]any, error) { return map[string]any{}, nil }

// nameProps sends the optional (or required) NAME, and nothing else.
func nameProps(a *parsed) (map[string]any, error) {
	if len(a.args) == 0 {
		return map[string]any{}, nil
	}
	return map[string]any{"name": a.args[0]}, nil
}

func waitingProps(a *parsed) (map[string]any, error) {
	return map[string]any{"waiting": a.on("waiting")}, nil
}

// matchProps is start, stop and restart: Circus's circusctl always sends
// waiting and match, with or without a name.
func matchProps(a *parsed) (map[string]any, error) {
	p := map[string]any{"waiting": a.on("waiting"), "match": a.get("match", "glob")}
	if len(a.args) == 1 {
		p["name"] = a.args[0]
	}
	return p, nil
}

func incrProps(a *parsed) (map[string]any, error) {
	p := map[string]any{"name": a.args[0], "waiting": a.on("waiting")}
	if len(a.args) == 2 {
		nb, err := atoi("NB", a.args[1])
		if err != nil {
			return nil, err
		}
		p["nb"] = nb
	}
	return p, nil
}

func killProps(a *parsed) (map[string]any, error) {
	p := map[string]any{"name": a.args[0], "waiting": a.on("waiting")}
	if len(a.args) == 2 {
		pid, err := atoi("PID", a.args[1])
		if err != nil {
			return nil, err
		}
		p["pid"] = pid
	}
	if s, ok := a.set["signum"]; ok {
		// The arbiter resolves names itself (it accepts TERM, SIGTERM and
		// SIGRTMIN+1); a number goes as a number, as it means one.
		if n, err := strconv.Atoi(s); err == nil {
			p["signum"] = n
		} else {
			p["signum"] = s
		}
	}
	if s, ok := a.set["graceful_timeout"]; ok {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("--graceful_timeout %q is not a number of seconds", s)
		}
		p["graceful_timeout"] = f
	}
	return p, nil
}

func signalProps(a *parsed) (map[string]any, error) {
	// Circus sends signum as typed, a string even for "9", and the arbiter
	// resolves it; keeping that keeps the request byte-identical.
	p := map[string]any{
		"name":      a.args[0],
		"children":  a.on("children"),
		"recursive": a.on("recursive"),
		"signum":    a.args[len(a.args)-1],
	}
	if len(a.args) == 3 {
		pid, err := atoi("PID", a.args[1])
		if err != nil {
			return nil, err
		}
		p["pid"] = pid
	}
	return p, nil
}

func setProps(a *parsed) (map[string]any, error) {
	kv := a.args[1:]
	if len(kv)%2 != 0 {
		return nil, usageErrorf("the options are KEY VALUE pairs: %q has no value", kv[len(kv)-1])
	}
	opts := map[string]any{}
	for i := 0; i < len(kv); i += 2 {
		key := strings.ToLower(kv[i])
		v, err := convertOption(key, kv[i+1])
		if err != nil {
			return nil, err
		}
		opts[key] = v
	}
	p := map[string]any{"name": a.args[0], "options": opts}
	// Circus sends waiting only when asked for; false is the default anyway.
	if a.on("waiting") {
		p["waiting"] = true
	}
	return p, nil
}

// atoi converts the integer positional what, with an error naming it.
func atoi(what, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s %q is not an integer", what, s)
	}
	return n, nil
}

// durationFlag checks top's --process-timeout, a Go duration such as 3s.
func durationFlag(s string) error {
	_, err := time.ParseDuration(s)
	return err
}
