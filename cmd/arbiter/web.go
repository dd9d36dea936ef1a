package main

import (
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/stats"
	"github.com/ringmaster-dev/ringmaster/web"
)

// listenWeb binds [circus] httpd_host:httpd_port when httpd is on (nil
// otherwise), before any socket of the arbiter's, so that a port in use
// fails start-up with the config line.
func listenWeb(cfg *config.Config) (net.Listener, error) {
	c := cfg.Circus
	return listenHTTP(cfg, c.Httpd, c.HttpdHost, c.HttpdPort, "httpd", "httpd_port")
}

// listenHTTP binds host:port for the endpoint that [circus] key on turns
// on (nil when it is off); a failure names portKey's line, else key's.
func listenHTTP(cfg *config.Config, on bool, host string, port int, key, portKey string) (net.Listener, error) {
	if !on {
		return nil, nil
	}
	// Taken from the image before, after an upgrade in place: no request
	// is refused.
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := handover.Listen("http "+addr, "tcp", addr)
	if err != nil {
		if cfg.Pos("circus", portKey).Line != 0 {
			key = portKey
		}
		return nil, cfg.KeyError("circus", key, err)
	}
	return ln, nil
}

// console is the running web console.
type console struct {
	srv *web.Server
	wg  sync.WaitGroup
}

// startWeb serves the console on ln. A console that cannot start is
// reported and the arbiter runs without it.
func startWeb(ln net.Listener, cfg *config.Config, path string, a *arbiter.Arbiter, bus *pubsub.Bus, h *commands.Table, sampler *stats.Sampler, routes map[string]http.Handler, log *slog.Logger) *console {
	if ln == nil {
		return nil
	}
	log = log.With("endpoint", "httpd")
	srv, err := web.New(web.Options{
		Arbiter: a, Bus: bus, Commands: h, Sampler: sampler,
		Auth: cfg.Circus.HttpdAuth, Hosts: []string{cfg.Circus.HttpdHost},
		Logger: log, Version: buildVersion(), Config: path, Endpoint: cfg.Circus.Endpoint,
		Identify: access.Identify, Check: h.Check, Routes: routes,
	})
	if err != nil {
		ln.Close()
		log.Error("web console disabled", "err", err)
		return nil
	}
	c := &console{srv: srv}
	c.wg.Go(func() {
		if err := srv.Serve(ln); err != nil {
			log.Error("web console stopped", "err", err)
		}
	})
	log.Info("serving the web console", "url", "http://"+ln.Addr().String()+"/")
	return c
}

// Close disconnects every page and waits for the console to stop.
func (c *console) Close() {
	if c == nil {
		return
	}
	c.srv.Close()
	c.wg.Wait()
}
