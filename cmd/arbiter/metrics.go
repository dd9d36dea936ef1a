package main

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/metrics"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
	"github.com/ringmaster-dev/ringmaster/web"
)

// listenOps binds [circus] metrics_host:metrics_port when metrics is on
// (nil otherwise), with the other endpoints, so that a port in use fails
// start-up with the config line.
func listenOps(cfg *config.Config) (net.Listener, error) {
	c := cfg.Circus
	return listenHTTP(cfg, c.Metrics, c.MetricsHost, c.MetricsPort, "metrics", "metrics_port")
}

// opsServer is the running operations endpoints: /metrics, /healthz and
// /readyz, for the console's listener (Routes) and on ln of their own.
type opsServer struct {
	ep  *metrics.Endpoints
	srv *http.Server // nil without a listener of their own
	wg  sync.WaitGroup
}

// startOps makes the operations endpoints and serves them on ln, if not
// nil, behind the console's gate: httpd_auth, or loopback and the access
// keys' readers. Like the console, they are an extra: what cannot start
// is reported and the arbiter runs without it (nil when nothing started).
func startOps(ln net.Listener, cfg *config.Config, a *arbiter.Arbiter, bus *pubsub.Bus, relay *zmqpub.Relay, t *commands.Table, log *slog.Logger) *opsServer {
	log = log.With("endpoint", "metrics")
	ep, err := metrics.New(metrics.Options{
		Arbiter: a, Logger: log,
		Drops: []metrics.Drop{{Queue: "bus", Count: bus.Dropped}, {Queue: "subscriber", Count: relay.Dropped}},
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		log.Error("metrics and probes disabled", "err", err)
		return nil
	}
	s := &opsServer{ep: ep}
	if ln == nil {
		return s
	}
	gate, err := web.NewGate(gateOptions(cfg, t))
	if err == nil {
		err = gate.CheckListener(ln)
	}
	if err != nil {
		ln.Close()
		log.Error("metrics listener disabled", "err", err)
		return s
	}
	s.srv = gate.Server(mux(ep.Routes()), log)
	s.wg.Go(func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics and probes stopped", "err", err)
		}
	})
	log.Info("serving metrics and probes", "url", "http://"+ln.Addr().String()+"/metrics")
	return s
}

// gateOptions are the console's rules of entry, also asked of the
// operations listener.
func gateOptions(cfg *config.Config, t *commands.Table) web.GateOptions {
	return web.GateOptions{Auth: cfg.Circus.HttpdAuth, Hosts: []string{cfg.Circus.MetricsHost},
		Identify: access.Identify, Check: t.Check}
}

func mux(routes map[string]http.Handler) *http.ServeMux {
	m := http.NewServeMux()
	for path, h := range routes {
		m.Handle(path, h)
	}
	return m
}

// Routes are the endpoints for the console to serve too; nil when they
// did not start.
func (s *opsServer) Routes() map[string]http.Handler {
	if s == nil {
		return nil
	}
	return s.ep.Routes()
}

// Close stops the listener of their own, if any, and waits for it.
func (s *opsServer) Close() {
	if s == nil {
		return
	}
	if s.srv != nil {
		s.srv.Close()
	}
	s.wg.Wait()
	s.ep.Close()
}
