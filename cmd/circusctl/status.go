package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// status for a person: a table of the watchers, as supervisorctl status
// and systemctl list-units show them, from what the arbiter adds to
// Circus's reply when asked for details (control/commands/status.go). It
// is printed on a terminal or with --table; piped, status prints Circus's
// "name: state" lines, which scripts read.

// watcherInfo is one watcher's details in a status reply.
type watcherInfo struct {
	State     string            `json:"state"`
	Detail    string            `json:"detail"`
	Target    int               `json:"target"`
	Running   int               `json:"running"`
	Ready     int               `json:"ready"`
	Uptime    *float64          `json:"uptime"`
	Restarts  map[string]uint64 `json:"restarts"`
	LastExit  *exitInfo         `json:"last_exit"`
	Processes []processInfo     `json:"processes"`
}

type exitInfo struct {
	Pid        int     `json:"pid"`
	Code       int     `json:"code"`
	SignalName string  `json:"signal_name"`
	Expected   bool    `json:"expected"`
	Reason     string  `json:"reason"`
	Time       float64 `json:"time"`
}

type processInfo struct {
	Pid      int      `json:"pid"`
	Wid      int      `json:"wid"`
	Uptime   *float64 `json:"uptime"`
	Ready    bool     `json:"ready"`
	Stopping bool     `json:"stopping"`
	Restarts uint64   `json:"restarts"`
	Status   string   `json:"status"`
}

// statusTable renders a status reply as the watchers' table, and for
// status NAME the workers' table below it. ok is false when the reply has
// no details (Circus's own arbiter): the caller prints Circus's lines.
func statusTable(r reply, name string, now time.Time) (out string, ok bool, err error) {
	var d struct {
		Watchers map[string]watcherInfo `json:"watchers"`
		Watcher  *watcherInfo           `json:"watcher"`
	}
	if err := json.Unmarshal(r.raw, &d); err != nil {
		return "", false, fmt.Errorf("reply %s: %w", r.raw, err)
	}
	header := []string{"NAME", "STATE", "READY/RUNNING/TARGET", "UPTIME", "RESTARTS", "LAST EXIT"}
	switch {
	case d.Watchers != nil:
		names := make([]string, 0, len(d.Watchers))
		for n := range d.Watchers {
			names = append(names, n)
		}
		slices.SortFunc(names, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
		var rows [][]string
		for _, n := range names {
			rows = append(rows, watcherRow(n, d.Watchers[n], now))
		}
		return table(header, rows, 2), true, nil
	case d.Watcher != nil:
		w := *d.Watcher
		out := table(header, [][]string{watcherRow(name, w, now)}, 2)
		if len(w.Processes) == 0 {
			return out + "\n\nno workers", true, nil
		}
		var rows [][]string
		for _, p := range w.Processes {
			rows = append(rows, processRow(p))
		}
		return out + "\n\n" + table([]string{"PID", "WID", "UPTIME", "READY", "RESTARTS", "STATUS"}, rows, 2), true, nil
	}
	return "", false, nil
}

func watcherRow(name string, w watcherInfo, now time.Time) []string {
	state := w.State
	if w.Detail != "" {
		state += " (" + w.Detail + ")"
	}
	return []string{
		name, state,
		fmt.Sprintf("%d/%d/%d", w.Ready, w.Running, w.Target),
		uptime(w.Uptime),
		restartsCell(w.Restarts),
		lastExitCell(w.LastExit, now),
	}
}

func processRow(p processInfo) []string {
	ready := "no"
	switch {
	case p.Stopping:
		ready = "stopping"
	case p.Ready:
		ready = "yes"
	}
	return []string{strconv.Itoa(p.Pid), strconv.Itoa(p.Wid), uptime(p.Uptime), ready,
		strconv.FormatUint(p.Restarts, 10), p.Status}
}

// restartsCell is the total, with the reasons when there is more than one:
// "7 (exit 5, oom 2)".
func restartsCell(m map[string]uint64) string {
	var total uint64
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		total += m[k]
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	if len(parts) > 1 {
		return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
	}
	return strconv.FormatUint(total, 10)
}

// lastExitCell says how the last counted death went, as supervisorctl's
// "terminated by SIGKILL; not expected": "SIGKILL (not expected) 12s ago",
// "exit 3 (not expected) 2s ago", "SIGTERM (max_age; expected) 1h02m ago".
func lastExitCell(e *exitInfo, now time.Time) string {
	if e == nil {
		return "-"
	}
	what := "exit " + strconv.Itoa(e.Code)
	if e.SignalName != "" {
		what = e.SignalName
	}
	var why []string
	switch e.Reason {
	case "exit", "signal", "clean":
	default:
		why = append(why, e.Reason)
	}
	if e.Expected {
		why = append(why, "expected")
	} else {
		why = append(why, "not expected")
	}
	ago := now.Sub(time.UnixMicro(int64(e.Time * 1e6)))
	return fmt.Sprintf("%s (%s) %s ago, pid %d", what, strings.Join(why, "; "), human(ago), e.Pid)
}

// uptime is a number of seconds for a person, "-" for none.
func uptime(s *float64) string {
	if s == nil {
		return "-"
	}
	return human(time.Duration(*s * float64(time.Second)))
}

// human writes d in its two largest units: 12s, 5m07s, 1h02m, 3d04h.
func human(d time.Duration) string {
	d = max(d, 0)
	s := int64(d / time.Second)
	switch {
	case s < 60:
		return fmt.Sprintf("%ds", s)
	case s < 3600:
		return fmt.Sprintf("%dm%02ds", s/60, s%60)
	case s < 86400:
		return fmt.Sprintf("%dh%02dm", s/3600, s%3600/60)
	}
	return fmt.Sprintf("%dd%02dh", s/86400, s%86400/3600)
}

// isTerminal reports whether f is a terminal, where a person reads. The
// fd is reached through SyscallConn: Fd would make it blocking.
func isTerminal(f *os.File) bool {
	sc, err := f.SyscallConn()
	if err != nil {
		return false
	}
	var ioErr error
	if err := sc.Control(func(fd uintptr) { _, ioErr = unix.IoctlGetTermios(int(fd), unix.TCGETS) }); err != nil {
		return false
	}
	return ioErr == nil
}
