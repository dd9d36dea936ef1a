package config

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// rlimits maps the NAME of rlimit_NAME to its resource: every RLIMIT_* that
// golang.org/x/sys/unix knows on Linux.
var rlimits = map[string]int{
	"as":         unix.RLIMIT_AS,
	"core":       unix.RLIMIT_CORE,
	"cpu":        unix.RLIMIT_CPU,
	"data":       unix.RLIMIT_DATA,
	"fsize":      unix.RLIMIT_FSIZE,
	"locks":      unix.RLIMIT_LOCKS,
	"memlock":    unix.RLIMIT_MEMLOCK,
	"msgqueue":   unix.RLIMIT_MSGQUEUE,
	"nice":       unix.RLIMIT_NICE,
	"nofile":     unix.RLIMIT_NOFILE,
	"nproc":      unix.RLIMIT_NPROC,
	"rss":        unix.RLIMIT_RSS,
	"rtprio":     unix.RLIMIT_RTPRIO,
	"rttime":     unix.RLIMIT_RTTIME,
	"sigpending": unix.RLIMIT_SIGPENDING,
	"stack":      unix.RLIMIT_STACK,
}

// rlimit reads one rlimit_NAME key. An empty value, or -1 (Python's
// resource.RLIM_INFINITY), means unlimited.
func (f *fields) rlimit(key string) (Rlimit, bool) {
	name := strings.ToLower(strings.TrimPrefix(key, "rlimit_"))
	res, ok := rlimits[name]
	if !ok {
		f.errorf(key, "unknown resource limit %q (known: as, core, cpu, data, fsize, locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack)", name)
		return Rlimit{}, false
	}
	v := strings.TrimSpace(f.vals[key])
	if v == "" || v == "-1" {
		return Rlimit{Name: name, Resource: res, Value: unix.RLIM_INFINITY}, true
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		f.errorf(key, "%q is not a number (leave it empty for unlimited)", v)
		return Rlimit{}, false
	}
	return Rlimit{Name: name, Resource: res, Value: n}, true
}
