package metrics

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ringmaster-dev/ringmaster/arbiter"
)

// Options are what [New] serves and how.
type Options struct {
	// Arbiter is what is measured and probed; required.
	Arbiter *arbiter.Arbiter
	// Drops are the event queues whose losses ringmaster_events_dropped_total
	// counts, by Drop.Queue.
	Drops []Drop
	// Deadline bounds the wait for one watcher's loop, in a scrape and in
	// a probe; 0 means 1 s.
	Deadline time.Duration
	// Logger receives what a scrape could not read; nil discards it.
	Logger *slog.Logger
}

// Endpoints are the three handlers. Close releases the collector's netlink
// socket.
type Endpoints struct {
	// Metrics serves Prometheus's text format (or OpenMetrics, or protobuf,
	// as the scraper asks).
	Metrics http.Handler
	// Healthz and Readyz are the probes (see the package documentation).
	Healthz, Readyz http.Handler

	c *collector
}

// New returns the endpoints of o.Arbiter, with a registry of their own.
func New(o Options) (*Endpoints, error) {
	if o.Arbiter == nil {
		return nil, errors.New("metrics: Arbiter is required")
	}
	if o.Deadline <= 0 {
		o.Deadline = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := newCollector(o)
	reg := prometheus.NewPedanticRegistry()
	if err := errors.Join(
		reg.Register(c),
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
	); err != nil {
		return nil, err
	}
	p := &prober{a: o.Arbiter, deadline: o.Deadline}
	return &Endpoints{
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
			// Scrapes are served one at a time anyway (the collector's
			// mutex); more waiting would only pile up.
			MaxRequestsInFlight: 4,
			Timeout:             10 * time.Second,
		}),
		Healthz: http.HandlerFunc(p.healthz),
		Readyz:  http.HandlerFunc(p.readyz),
		c:       c,
	}, nil
}

func newCollector(o Options) *collector {
	c := &collector{a: o.Arbiter, drops: o.Drops, deadline: o.Deadline, log: o.Logger,
		cpu: map[*arbiter.Watcher]*cpuCount{}}
	c.stat = c.proc.Stat
	return c
}

// Routes maps each endpoint's path to its handler: /metrics, /healthz,
// /readyz.
func (e *Endpoints) Routes() map[string]http.Handler {
	return map[string]http.Handler{"/metrics": e.Metrics, "/healthz": e.Healthz, "/readyz": e.Readyz}
}

// Close releases what the collector keeps open between scrapes. The
// handlers must not be used after.
func (e *Endpoints) Close() error {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	return e.c.queues.Close()
}
