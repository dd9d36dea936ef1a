package pubsub

import (
	"math"
	"strconv"
	"strings"

	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
)

// Topic returns the ZeroMQ topic Circus publishes ev under:
// "watcher.<name>.<kind>", the name lower-cased with spaces turned into "_"
// ("Web Srv" → "watcher.web_srv.start"). An event with no watcher is the
// arbiter's own and goes under "arbiter.<kind>", which no Circus topic
// starts with.
func Topic(ev Event) string {
	if ev.Watcher == "" {
		return "arbiter." + ev.Kind.String()
	}
	name := strings.ReplaceAll(strings.ToLower(ev.Watcher), " ", "_")
	return "watcher." + name + "." + ev.Kind.String()
}

// Body returns the JSON body Circus publishes for ev: Circus's keys in
// Circus's order, formatted as Python's json.dumps formats them (", " and
// ": " separators, non-ASCII escaped as \uXXXX, time as a float in seconds),
// followed by the one key Ringmaster adds, "seq". The package documentation
// lists every body.
func Body(ev Event) []byte {
	b := make([]byte, 0, 96)
	b = append(b, '{')
	switch ev.Kind {
	case Spawn, Kill:
		b = appendInt(b, "process_pid", ev.Pid)
		b = appendTime(b, ev)
	case Reap, Orphan:
		b = appendInt(b, "process_pid", ev.Pid)
		b = appendTime(b, ev)
		b = appendInt(b, "exit_code", ev.ExitCode)
	case Health, Limit, OOM:
		b = appendInt(b, "process_pid", ev.Pid)
		b = appendTime(b, ev)
		b = appendKey(b, "reason")
		b = pyjson.AppendString(b, ev.Reason)
	case Ready:
		b = appendInt(b, "process_pid", ev.Pid)
		b = appendTime(b, ev)
	case HookSuccess:
		b = appendKey(b, "name")
		b = pyjson.AppendString(b, ev.Hook)
		b = appendTime(b, ev)
	case HookFailure:
		b = appendKey(b, "name")
		b = pyjson.AppendString(b, ev.Hook)
		b = appendTime(b, ev)
		b = appendKey(b, "error")
		b = pyjson.AppendString(b, ev.Reason)
	case Command:
		b = appendAudit(b, ev)
	case Scale:
		b = appendInt(b, "from", ev.From)
		b = appendInt(b, "to", ev.To)
		b = appendTime(b, ev)
		b = appendKey(b, "reason")
		b = pyjson.AppendString(b, ev.Reason)
	case Upgrade:
		b = appendInt(b, "pid", ev.Pid)
		b = appendKey(b, "from")
		b = pyjson.AppendString(b, ev.Versions[0])
		b = appendKey(b, "to")
		b = pyjson.AppendString(b, ev.Versions[1])
		b = appendTime(b, ev)
	case UpgradeFailed:
		b = appendInt(b, "pid", ev.Pid)
		b = appendTime(b, ev)
		b = appendKey(b, "reason")
		b = pyjson.AppendString(b, ev.Reason)
	case Flapping, Backoff:
		b = appendTime(b, ev)
		b = appendKey(b, "reason")
		b = pyjson.AppendString(b, ev.Reason)
	default:
		b = appendTime(b, ev)
	}
	b = appendKey(b, "seq")
	b = strconv.AppendUint(b, ev.Seq, 10)
	return append(b, '}')
}

// appendAudit writes a command event's body: command, properties, peer,
// uid and pid (null when unknown), via, status, reason (only for an error
// or a refusal), result (only when the reply had fields), then time.
func appendAudit(b []byte, ev Event) []byte {
	a := ev.Audit
	if a == nil {
		a = &Audit{}
	}
	b = appendKey(b, "command")
	b = pyjson.AppendString(b, a.Command)
	b = appendKey(b, "properties")
	if len(a.Properties) > 0 {
		b = append(b, a.Properties...)
	} else {
		b = append(b, "{}"...)
	}
	b = appendKey(b, "peer")
	b = pyjson.AppendString(b, a.Peer)
	b = appendKey(b, "uid")
	if a.UID >= 0 {
		b = strconv.AppendInt(b, int64(a.UID), 10)
	} else {
		b = append(b, "null"...)
	}
	b = appendKey(b, "pid")
	if a.PID > 0 {
		b = strconv.AppendInt(b, int64(a.PID), 10)
	} else {
		b = append(b, "null"...)
	}
	b = appendKey(b, "via")
	b = pyjson.AppendString(b, a.Via)
	b = appendKey(b, "status")
	b = pyjson.AppendString(b, a.Status)
	if a.Reason != "" {
		b = appendKey(b, "reason")
		b = pyjson.AppendString(b, a.Reason)
	}
	if len(a.Result) > 0 {
		b = appendKey(b, "result")
		b = append(b, a.Result...)
	}
	return appendTime(b, ev)
}

// appendKey writes `"key": `, preceded by ", " unless it is the first key.
func appendKey(b []byte, key string) []byte {
	if len(b) > 1 {
		b = append(b, ", "...)
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, `": `...)
}

func appendInt(b []byte, key string, v int) []byte {
	return strconv.AppendInt(appendKey(b, key), int64(v), 10)
}

// appendTime writes the "time" member as Python's repr(float) does for an
// epoch time: the shortest decimal that reads back, and always a point
// ("1795464673.0", never "1795464673"). Within 100µs of the epoch, where
// repr turns to exponent form ("1e-06"), it keeps positional form
// ("0.000001"), as this body always has.
func appendTime(b []byte, ev Event) []byte {
	b = appendKey(b, "time")
	t := unixSeconds(ev)
	if t != 0 && math.Abs(t) < 1e-4 {
		return strconv.AppendFloat(b, t, 'f', -1, 64)
	}
	return pyjson.AppendFloat(b, t)
}

// unixSeconds is ev.Time in seconds, rounded to the microsecond so that the
// shortest decimal form has at most six digits after the point, as Python's
// time.time() usually prints.
func unixSeconds(ev Event) float64 {
	ns := ev.Time.UnixNano()
	return float64((ns+500)/1000) / 1e6
}
