package commands

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
)

// The status an operator can act on (issue 16): what status with
// "details": true adds to Circus's reply, per watcher, under "watchers"
// (by name) or "watcher" (status NAME):
//
//	state, detail      as statuses and details say
//	retry_at, retry_in when it next tries (epoch seconds, seconds from the
//	                   reply), null when it does not wait to
//	target             numprocesses, as resized since the configuration
//	running, ready     its workers not on their way out, and those ready
//	since, uptime      when it last became active, and for how long;
//	                   null when it is not active
//	restarts           the deaths it counted, by reason (exit, signal,
//	                   clean, oom, unhealthy, limits, max_age)
//	last_exit          the last of them: pid, wid, code (-1 if signalled),
//	                   signal (0 if it exited), signal_name, expected,
//	                   reason, time; null when none
//	processes          (status NAME only) each worker's pid, wid, started,
//	                   uptime, ready, stopping, restarts (of its wid) and
//	                   the STATUS= it last sent ("" without)
//
// Times are epoch seconds, as Circus's stats give started.

// watcherDetails renders s, read at now, as the object described above;
// procs adds the workers.
func watcherDetails(s arbiter.Status, now time.Time, procs bool) control.Object {
	running, ready := 0, 0
	for _, p := range s.Procs {
		if !p.Stopping {
			running++
			if p.Ready {
				ready++
			}
		}
	}
	restarts := control.Object{}
	for _, r := range arbiter.Reasons {
		if n, ok := s.Restarts[r]; ok {
			restarts = append(restarts, field(r, n))
		}
	}
	o := control.Object{
		field("state", s.State.String()),
		field("detail", s.Detail),
		field("retry_at", epochOrNil(s.RetryAt)),
		field("retry_in", sinceOrNil(now, s.RetryAt, -1)),
		field("target", s.Target),
		field("running", running),
		field("ready", ready),
		field("since", epochOrNil(s.Since)),
		field("uptime", sinceOrNil(now, s.Since, 1)),
		field("restarts", restarts),
		field("last_exit", lastExit(s.LastExit)),
	}
	if procs {
		ps := []control.Object{}
		for _, p := range s.Procs {
			ps = append(ps, control.Object{
				field("pid", p.Pid),
				field("wid", p.Wid),
				field("started", epochOrNil(p.Started)),
				field("uptime", sinceOrNil(now, p.Started, 1)),
				field("ready", p.Ready),
				field("stopping", p.Stopping),
				field("restarts", p.Restarts),
				field("status", p.Status),
			})
		}
		o = append(o, field("processes", ps))
	}
	return o
}

// lastExit renders e, or null.
func lastExit(e *arbiter.ExitInfo) any {
	if e == nil {
		return nil
	}
	name := ""
	if e.Signal != 0 {
		name = unix.SignalName(e.Signal)
	}
	return control.Object{
		field("pid", e.Pid),
		field("wid", e.Wid),
		field("code", e.Code),
		field("signal", int(e.Signal)),
		field("signal_name", name),
		field("expected", e.Expected),
		field("reason", e.Reason),
		field("time", epochOrNil(e.Time)),
	}
}

// epochOrNil is t as epoch seconds, or null for the zero time.
func epochOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return float64(t.UnixMicro()) / 1e6
}

// sinceOrNil is the seconds from t to now (sign 1) or from now to t (sign
// -1), never below zero, rounded to milliseconds; null for the zero time.
func sinceOrNil(now, t time.Time, sign int) any {
	if t.IsZero() {
		return nil
	}
	d := max(time.Duration(sign)*now.Sub(t), 0)
	return d.Round(time.Millisecond).Seconds()
}
