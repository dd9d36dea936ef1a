package config

import (
	"net"
	"net/url"
	"strings"
	"time"
)

// Health is a watcher's health check, the health.* keys (Ringmaster's;
// Circus has none). Each worker is checked on its own: the target may
// use $(circus.wid) and $(circus.sockets.NAME.port), substituted per worker,
// so that each worker is reached on its own port.
type Health struct {
	// URL is health.url: a GET that must answer 2xx or 3xx (redirects are
	// not followed) within Timeout.
	URL string
	// Body is health.body: text the answer to URL must contain.
	Body string
	// TCP is health.tcp, host:port: a connect that must succeed within
	// Timeout.
	TCP string
	// Cmd is health.cmd: a command that must exit 0 within Timeout, or its
	// process group is killed. It is split as cmd is (shlex, no shell),
	// and runs as the watcher's user, in its working_dir, with the
	// worker's environment plus CIRCUS_WATCHER, CIRCUS_PID and CIRCUS_WID.
	Cmd string
	// Interval is health.interval, between the end of one check and the
	// start of the next (default 5 s); Timeout is health.timeout (default
	// 2 s); Failures is health.failures, the failed checks in a row after
	// which the worker is stopped gracefully and replaced (default 3).
	Interval time.Duration
	Timeout  time.Duration
	Failures int
}

// Enabled reports whether the watcher has a check.
func (h Health) Enabled() bool { return h.URL != "" || h.TCP != "" || h.Cmd != "" }

// Target names what is checked, for logs and events.
func (h Health) Target() string {
	switch {
	case h.URL != "":
		return h.URL
	case h.TCP != "":
		return h.TCP
	}
	return h.Cmd
}

// Key is the key of the check the watcher has (health.url, health.tcp or
// health.cmd), "" when it has none: for messages about its target.
func (h Health) Key() string {
	switch {
	case h.URL != "":
		return "health.url"
	case h.TCP != "":
		return "health.tcp"
	case h.Cmd != "":
		return "health.cmd"
	}
	return ""
}

func defaultHealth() Health {
	return Health{Interval: 5 * time.Second, Timeout: 2 * time.Second, Failures: 3}
}

// readHealth reads the health.* keys into h.
func (f *fields) readHealth(h *Health) {
	f.str("health.url", &h.URL)
	f.str("health.body", &h.Body)
	f.str("health.tcp", &h.TCP)
	f.str("health.cmd", &h.Cmd)
	f.seconds("health.interval", &h.Interval, false)
	f.seconds("health.timeout", &h.Timeout, false)
	f.integer("health.failures", &h.Failures, 1, maxInt)
	if h.URL != "" {
		// Substitutions are per worker; check the rest of the URL with a
		// stand-in value.
		u, err := url.Parse(Expand(h.URL, func(string) (string, bool) { return "1", true }))
		switch {
		case err != nil:
			f.errorf("health.url", "%q is not a URL: %v", h.URL, err)
		case u.Scheme != "http" && u.Scheme != "https":
			f.errorf("health.url", "%q: want an http:// or https:// URL", h.URL)
		case u.Host == "":
			f.errorf("health.url", "%q has no host", h.URL)
		}
	}
	if h.TCP != "" {
		if _, _, err := net.SplitHostPort(Expand(h.TCP, func(string) (string, bool) { return "1", true })); err != nil {
			f.errorf("health.tcp", "%q: want host:port", h.TCP)
		}
	}
	var set []string
	for _, k := range []struct {
		key, v string
	}{{"health.url", h.URL}, {"health.tcp", h.TCP}, {"health.cmd", h.Cmd}} {
		if k.v != "" {
			set = append(set, k.key)
		}
	}
	if len(set) > 1 {
		f.errorf(set[len(set)-1], "a watcher has one check, not %s", strings.Join(set, " and "))
	}
	if h.Body != "" && h.URL == "" {
		f.errorf("health.body", "needs health.url")
	}
	if h.Enabled() && h.Interval <= 0 {
		f.errorf("health.interval", "must be more than 0")
	}
	if h.Enabled() && h.Timeout <= 0 {
		f.errorf("health.timeout", "must be more than 0")
	}
}
