package pubsub

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
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
	case Flapping:
		b = appendTime(b, ev)
		b = appendKey(b, "reason")
		b = appendPyString(b, ev.Reason)
	default:
		b = appendTime(b, ev)
	}
	b = appendKey(b, "seq")
	b = strconv.AppendUint(b, ev.Seq, 10)
	return append(b, '}')
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

func appendTime(b []byte, ev Event) []byte {
	return appendPyFloat(appendKey(b, "time"), unixSeconds(ev))
}

// unixSeconds is ev.Time in seconds, rounded to the microsecond so that the
// shortest decimal form has at most six digits after the point, as Python's
// time.time() usually prints.
func unixSeconds(ev Event) float64 {
	ns := ev.Time.UnixNano()
	return float64((ns+500)/1000) / 1e6
}

// appendPyFloat formats f as Python's repr(float) does for the values an
// epoch time takes: the shortest decimal that reads back as f, and always a
// point ("1795464673.0", never "1795464673").
func appendPyFloat(b []byte, f float64) []byte {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return append(b, "null"...) // never for a time; json.dumps would say Infinity
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'f', -1, 64)
	if bytes.IndexByte(b[start:], '.') < 0 {
		b = append(b, ".0"...)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendPyString writes s as a JSON string the way Python's json.dumps does
// with its default ensure_ascii=True: the two-character escapes \" \\ \n \r
// \t \b \f, every other byte outside printable ASCII (including DEL) as a
// lower-case \u00XX, and characters beyond the BMP as a surrogate pair.
// Invalid UTF-8 becomes \ufffd, since a Python str cannot hold it.
func appendPyString(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, `\"`...)
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r >= ' ' && r <= '~':
			b = append(b, byte(r))
		case r > 0xFFFF:
			r -= 0x10000
			b = appendU(b, 0xD800+(r>>10))
			b = appendU(b, 0xDC00+(r&0x3FF))
		default:
			if r == utf8.RuneError {
				r = 0xFFFD
			}
			b = appendU(b, r)
		}
	}
	return append(b, '"')
}

func appendU(b []byte, r rune) []byte {
	return append(b, '\\', 'u',
		hexDigits[r>>12&0xF], hexDigits[r>>8&0xF], hexDigits[r>>4&0xF], hexDigits[r&0xF])
}
