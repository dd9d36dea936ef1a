package config

import "strconv"

// metricsKeys are the [circus] keys of the operations listener:
// Prometheus's /metrics and the /healthz and /readyz probes (package
// metrics), served on a listener of their own when metrics is on. The
// console, when on, serves the same paths on its own listener.
var metricsKeys = []string{"metrics", "metrics_host", "metrics_port"}

// readMetrics reads the operations listener's keys. Like the console, a
// listener beyond loopback needs httpd_auth: the metrics name every
// watcher and socket, and the probes say what is failing. The port is
// checked even when metrics is off, so that turning it on reveals no
// mistake.
func readMetrics(f *fields, c *Circus) {
	f.boolean("metrics", &c.Metrics)
	f.str("metrics_host", &c.MetricsHost)
	f.integer("metrics_port", &c.MetricsPort, 0, 65535)
	if !c.Metrics || c.HttpdAuth != "" || IsLoopbackHost(c.MetricsHost) {
		return
	}
	key := "metrics_host"
	if _, ok := f.get(key); !ok {
		key = "metrics"
	}
	f.errorf(key, "/metrics, /healthz and /readyz would listen on %q, beyond this machine, without authentication: set httpd_auth = USER:PASSWORD (asked on this listener as on the console's), or metrics_host = localhost", c.MetricsHost)
}

// readProbes reads a watcher's readyz_min: how many of its workers must be
// ready for /readyz to count the watcher as ready, when fewer than its
// target will do (0: the watcher never holds /readyz back). Only autostart
// watchers count at all.
func (f *fields) readProbes(w *Watcher) {
	v, ok := f.get("readyz_min")
	if !ok {
		return
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		f.errorf("readyz_min", "%q is not a number of workers (0 or more)", v)
		return
	}
	w.ReadyzMin = n
	if !w.Autostart {
		f.warnf("readyz_min", "ignored: /readyz waits only for autostart watchers, and autostart = false")
	}
}
