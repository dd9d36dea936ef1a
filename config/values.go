package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fields reads typed values out of one section, reporting each bad value
// with its position and carrying on, so that one pass finds every problem.
type fields struct {
	d    *diag
	sec  *rawSection
	vals map[string]string // after load-time substitution
}

func newFields(d *diag, sec *rawSection, lookup func(string) (string, bool)) *fields {
	f := &fields{d: d, sec: sec, vals: make(map[string]string, len(sec.keys))}
	for _, k := range sec.keys {
		f.vals[k.name] = Expand(k.value, lookup)
	}
	return f
}

func (f *fields) pos(key string) Position {
	if k, ok := f.sec.get(key); ok {
		return k.pos
	}
	return f.sec.pos
}

func (f *fields) errorf(key, format string, args ...any) {
	f.d.errorf(f.pos(key), f.sec.name, key, format, args...)
}

func (f *fields) warnf(key, format string, args ...any) {
	f.d.warnf(f.pos(key), f.sec.name, key, format, args...)
}

// get returns the value of key and whether the section sets it.
func (f *fields) get(key string) (string, bool) {
	v, ok := f.vals[key]
	return v, ok
}

func (f *fields) str(key string, dst *string) {
	if v, ok := f.get(key); ok {
		*dst = v
	}
}

func (f *fields) boolean(key string, dst *bool) {
	if v, ok := f.get(key); ok {
		b, err := parseBool(v)
		if err != nil {
			f.errorf(key, "%v", err)
			return
		}
		*dst = b
	}
}

// integer reads a whole number within [lo, hi].
func (f *fields) integer(key string, dst *int, lo, hi int) {
	if v, ok := f.get(key); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			f.errorf(key, "%q is not a number", v)
		case n < 0 && lo == 0:
			f.errorf(key, "%d is negative", n)
		case n < lo || n > hi:
			f.errorf(key, "%d is out of range %d..%d", n, lo, hi)
		default:
			*dst = n
		}
	}
}

// seconds reads a number of seconds, whole or not, as a duration; a
// negative one is refused unless negative is set.
func (f *fields) seconds(key string, dst *time.Duration, negative bool) {
	if v, ok := f.get(key); ok {
		d, err := parseSeconds(v)
		switch {
		case err != nil:
			f.errorf(key, "%v", err)
		case d < 0 && !negative:
			f.errorf(key, "%q is negative", v)
		default:
			*dst = d
		}
	}
}

func (f *fields) signal(key string, dst *syscall.Signal) {
	if v, ok := f.get(key); ok {
		s, err := ParseSignal(v)
		if err != nil {
			f.errorf(key, "%v", err)
			return
		}
		*dst = s
	}
}

// umask reads an octal file mode mask, 0..0777.
func (f *fields) umask(key string, dst *int) {
	if v, ok := f.get(key); ok {
		n, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(v), "0o"), 8, 32)
		if err != nil || n > 0o777 {
			f.errorf(key, "%q is not an octal umask (0..777)", v)
			return
		}
		*dst = int(n)
	}
}

// parseBool accepts Python configparser's booleans, in any case.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "true", "on":
		return true, nil
	case "0", "no", "false", "off":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use true or false)", s)
}

// parseSeconds reads Circus's bare seconds ("30", "25.5").
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("%q is not a number of seconds", s)
	}
	if math.Abs(f) > float64(math.MaxInt64)/float64(time.Second) {
		return 0, fmt.Errorf("%q seconds is too long", s)
	}
	return time.Duration(math.Round(f * float64(time.Second))), nil
}

// Linux's real-time signals as glibc and Python number them: the kernel's
// first two are taken by the C library.
const (
	sigRTMin = 34
	sigRTMax = 64
)

// ParseSignal reads a signal as Circus's stop_signal does: a number ("15"),
// a name with or without the SIG prefix in any case ("TERM", "sigterm"), or
// a name with an offset ("SIGRTMIN+2", "RTMAX-1").
func ParseSignal(s string) (syscall.Signal, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	if n, err := strconv.Atoi(t); err == nil {
		if n < 1 || n > sigRTMax {
			return 0, fmt.Errorf("%q is not a signal number (1..%d)", s, sigRTMax)
		}
		return syscall.Signal(n), nil
	}
	name, off := t, 0
	if i := strings.IndexAny(t, "+-"); i > 0 {
		n, err := strconv.Atoi(t[i:])
		if err != nil {
			return 0, fmt.Errorf("%q is not a signal", s)
		}
		name, off = t[:i], n
	}
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	var sig int
	switch name {
	case "SIGRTMIN":
		sig = sigRTMin
	case "SIGRTMAX":
		sig = sigRTMax
	default:
		sig = int(unix.SignalNum(name))
		if sig == 0 {
			return 0, fmt.Errorf("%q is not a signal", s)
		}
	}
	sig += off
	if sig < 1 || sig > sigRTMax {
		return 0, fmt.Errorf("%q is not a signal (out of range)", s)
	}
	return syscall.Signal(sig), nil
}
