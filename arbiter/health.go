package arbiter

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// A worker's health check runs in a goroutine of its own, so that a check
// that hangs (a worker that accepts and never answers) only ever delays
// that worker's next check, bounded by health.timeout. The goroutine sends
// each outcome to the watcher's loop, which alone counts failures and
// decides: after health.failures in a row the worker is replaced as max_age
// replaces one, the new worker first, then the old one stopped gracefully.

// readyProbe is the longest pause between checks of a worker that is not
// ready yet.
const readyProbe = 200 * time.Millisecond

// healthResult is the outcome of one check of the worker pid.
type healthResult struct {
	pid int
	err error // nil: healthy
}

// newHealthClient is one worker's HTTP client. It keeps its connection
// between checks: a new loopback connection costs the arbiter more in
// connect(2) than the whole request on an open one, and a kept connection
// stays with the worker it reached. It ignores proxy settings from the
// environment and does not follow redirects: a 3xx is an answer.
func newHealthClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1, DisableCompression: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// syncHealth starts a check for each running worker that lacks one when
// the watcher has a check, and ends them all when it no longer has: health
// keys change without new workers. Called by the loop after any step that
// may have replaced cfg.
func (w *Watcher) syncHealth() {
	for _, p := range w.procs {
		if w.cfg.Health.Enabled() {
			w.startHealth(p)
		} else {
			w.endHealth(p)
		}
	}
}

// startHealth starts p's check if the watcher has one and p has none.
func (w *Watcher) startHealth(p *worker) {
	if !w.cfg.Health.Enabled() || p.health != nil || p.stopping || p.retiring {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.health = cancel
	lookup := healthVars(p.Wid, w.socks)
	pid := p.Pid
	ready := &p.ready
	w.checks.Go(func() { w.checkLoop(ctx, pid, ready, lookup) })
}

// endWatch ends every goroutine that watches p (its health check and its
// notify reader): p is going, or no longer the watcher's.
func (w *Watcher) endWatch(p *worker) {
	w.endHealth(p)
	w.endNotify(p)
}

// endHealth stops p's check, if it has one.
func (w *Watcher) endHealth(p *worker) {
	if p.health != nil {
		p.health()
		p.health = nil
	}
	p.healthFails = 0
}

// checkLoop checks the worker pid every health.interval (read afresh each
// round, so a live change applies at once) until ctx is done. Until the
// worker is ready it is checked every readyProbe at most, so that ready =
// health does not keep a started worker waiting a whole interval.
func (w *Watcher) checkLoop(ctx context.Context, pid int, ready *atomic.Bool, lookup func(string) (string, bool)) {
	client := newHealthClient()
	defer client.CloseIdleConnections()
	for {
		h := w.Config().Health
		if !h.Enabled() {
			return
		}
		// Checks of every worker fall on the same instants, multiples of
		// the interval: one burst a round costs the arbiter far less than
		// as many wake-ups spread over it.
		every := h.Interval
		if !ready.Load() {
			every = min(every, readyProbe)
		}
		now := time.Now()
		t := time.NewTimer(now.Truncate(every).Add(every).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		var err error
		if h.Cmd != "" {
			err = w.checkCmd(ctx, h, pid, lookup)
		} else {
			err = probe(ctx, client, h, lookup)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case w.healthc <- healthResult{pid, err}:
		case <-ctx.Done():
			return
		}
	}
}

// handleHealth counts a check's outcome and replaces the worker after
// health.failures failures in a row. A worker that is not ready yet is
// starting, not failing: its failed checks do not count (ready_timeout
// bounds its start), and with ready = health its first pass makes it ready.
func (w *Watcher) handleHealth(r healthResult) {
	p := w.procs[r.pid]
	if p == nil || p.stopping || p.retiring || p.health == nil {
		return // gone, or already on its way out
	}
	if !p.ready.Load() {
		if r.err == nil && w.cfg.Ready.Mode == config.ReadyHealth {
			w.markReady(p)
			w.progress()
		}
		return
	}
	if r.err == nil {
		if p.healthFails > 0 {
			w.log.Info("health check passed again", "pid", p.Pid, "after_failures", p.healthFails)
		}
		p.healthFails = 0
		return
	}
	p.healthFails++
	h := w.cfg.Health
	w.log.Warn("health check failed", "pid", p.Pid, "target", h.Target(), "failures", p.healthFails, "of", h.Failures, "err", r.err)
	if p.healthFails < h.Failures {
		return
	}
	w.replaceUnhealthy(p, fmt.Sprintf("%s: %d failed checks in a row, the last: %v", h.Target(), p.healthFails, r.err))
}

// replaceUnhealthy publishes a health event for p and replaces it: the
// replacement is started first, but p is stopped at once, since it is
// not serving anyway (a failed check, a watchdog that starved).
func (w *Watcher) replaceUnhealthy(p *worker, reason string) {
	w.log.Error("unhealthy: replacing", "pid", p.Pid, "wid", p.Wid, "reason", reason)
	w.emit(pubsub.Event{Kind: pubsub.Health, Pid: p.Pid, Wid: p.Wid, Reason: reason})
	p.cause = ReasonUnhealthy
	w.retire(p)
	if !p.stopping {
		w.stopProc(p)
	}
}

// probe runs one check, bounded by h.Timeout.
func probe(ctx context.Context, client *http.Client, h config.Health, lookup func(string) (string, bool)) error {
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	if h.URL == "" {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", config.Expand(h.TCP, lookup))
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, config.Expand(h.URL, lookup), nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "ringmaster-health")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	// Read to the end (bounded), so that the connection can be reused.
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
	}()
	if resp.StatusCode >= 400 {
		return fmt.Errorf("status %s", resp.Status)
	}
	if h.Body != "" {
		b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return err
		}
		if !bytes.Contains(b, []byte(h.Body)) {
			return fmt.Errorf("the answer (status %s) does not contain %q", resp.Status, h.Body)
		}
	}
	return nil
}

// healthVars resolves the substitutions of a check's target for the
// worker in slot wid: $(circus.wid), and $(circus.sockets.NAME.port) and
// .host, the address the arbiter bound.
func healthVars(wid int, socks []*sockets.Socket) func(string) (string, bool) {
	return func(key string) (string, bool) {
		if key == "wid" {
			return strconv.Itoa(wid), true
		}
		rest, ok := strings.CutPrefix(key, "sockets.")
		if !ok {
			return "", false
		}
		for _, s := range socks {
			switch {
			case strings.EqualFold(rest, s.Name()+".port"):
				return strconv.Itoa(s.Port()), true
			case strings.EqualFold(rest, s.Name()+".host"):
				return s.Host(), true
			}
		}
		return "", false
	}
}
