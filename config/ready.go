package config

import (
	"strconv"
	"strings"
	"time"
)

// Ready says when a new worker counts as ready to serve: the ready,
// ready_timeout and watchdog_sec keys (Ringmaster's; Circus has none). A
// graceful reload, a restart, a max_age recycling and an incr wait for
// readiness before they stop an old worker or answer, so that a version
// that never comes up never replaces one that works.
type Ready struct {
	// Mode is the ready key: ReadySpawn (the default, Circus's behaviour:
	// ready once started), ReadyWarmup (warmup_delay after it started),
	// ReadyNotify (when it sends READY=1 to its NOTIFY_SOCKET, as with
	// systemd's Type=notify) or ReadyHealth (when its first health check
	// passes).
	Mode ReadyMode
	// Timeout is ready_timeout (default 60 s): a worker not ready by then is
	// stopped; during a reload the reload fails and the old workers stay.
	Timeout time.Duration
	// Watchdog is watchdog_sec, with ready = notify: a worker that sends no
	// WATCHDOG=1 for that long is replaced, as systemd's WatchdogSec does.
	// The worker finds it in WATCHDOG_USEC. 0: off.
	Watchdog time.Duration
}

// ReadyMode is a ready value.
type ReadyMode string

// The ready values.
const (
	ReadySpawn  ReadyMode = "spawn"
	ReadyWarmup ReadyMode = "warmup"
	ReadyNotify ReadyMode = "notify"
	ReadyHealth ReadyMode = "health"
)

// Waits reports whether a new worker is not ready at once.
func (r Ready) Waits() bool { return r.Mode != ReadySpawn && r.Mode != "" }

func defaultReady() Ready {
	return Ready{Mode: ReadySpawn, Timeout: 60 * time.Second}
}

// Limits are a worker's resource limits, the limit.* keys (Ringmaster's):
// sampled from /proc, so they work on any host, with or without cgroups.
// A worker over a limit at every sample for Grace is replaced gracefully,
// its replacement first, as max_age replaces one.
type Limits struct {
	// MaxRSS is limit.max_rss, in bytes (250M, 1G...); 0: none.
	MaxRSS int64
	// MaxCPU is limit.max_cpu, in percent of one core (150 is one and a
	// half cores); 0: none.
	MaxCPU float64
	// Grace is limit.grace (default 10 s): how long a worker may stay over.
	Grace time.Duration
	// Interval is limit.interval (default 1 s), between samples; CPU use is
	// measured over it.
	Interval time.Duration
}

// Enabled reports whether a limit is set.
func (l Limits) Enabled() bool { return l.MaxRSS > 0 || l.MaxCPU > 0 }

func defaultLimits() Limits {
	return Limits{Grace: 10 * time.Second, Interval: time.Second}
}

// readReady reads the ready keys and the limit.* keys of w; h is w's
// health check, read before.
func (f *fields) readReady(w *Watcher) {
	r := &w.Ready
	if v, ok := f.get("ready"); ok {
		switch m := ReadyMode(strings.ToLower(strings.TrimSpace(v))); m {
		case ReadySpawn, ReadyWarmup, ReadyNotify, ReadyHealth:
			r.Mode = m
		default:
			f.errorf("ready", "%q: want spawn, warmup, notify or health", v)
		}
	}
	f.seconds("ready_timeout", &r.Timeout, false)
	f.seconds("watchdog_sec", &r.Watchdog, false)
	if r.Waits() && r.Timeout <= 0 {
		f.errorf("ready_timeout", "must be more than 0")
	}
	if r.Mode == ReadyHealth && !w.Health.Enabled() {
		f.errorf("ready", "ready = health needs a health check (health.url, health.tcp or health.cmd)")
	}
	if r.Mode == ReadyWarmup && w.WarmupDelay <= 0 {
		f.errorf("ready", "ready = warmup needs warmup_delay")
	}
	if r.Watchdog > 0 && r.Mode != ReadyNotify {
		f.errorf("watchdog_sec", "needs ready = notify: the watchdog is fed over NOTIFY_SOCKET")
	}

	l := &w.Limits
	if v, ok := f.get("limit.max_rss"); ok {
		n, err := parseSize(v)
		if err != nil {
			f.errorf("limit.max_rss", "%v", err)
		}
		l.MaxRSS = n
	}
	if v, ok := f.get("limit.max_cpu"); ok {
		p, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "%"), 64)
		if err != nil || p < 0 || p > 1e6 {
			f.errorf("limit.max_cpu", "%q is not a percentage of a core (90, or 150 for one and a half)", v)
		} else {
			l.MaxCPU = p
		}
	}
	f.seconds("limit.grace", &l.Grace, false)
	f.seconds("limit.interval", &l.Interval, false)
	if l.Enabled() && l.Interval <= 0 {
		f.errorf("limit.interval", "must be more than 0")
	}
}
