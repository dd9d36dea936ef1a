package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/sdnotify"
)

// statusEvery is how often the STATUS= line is brought up to date when no
// watchdog asks for more: workers come and go between the moments the
// arbiter reports itself (ready, reloaded).
const statusEvery = 10 * time.Second

// service tells a service manager what the arbiter does, through
// sd_notify(3) (systemd's Type=notify): READY=1 once the autostart
// watchers are up, RELOADING=1 and READY=1 around each reload of the
// configuration (SIGHUP, reloadconfig, the console), STOPPING=1 when the
// shutdown begins, a one-line STATUS= summary, and WATCHDOG=1 at half of
// WATCHDOG_USEC, sent only when every watcher's loop has just answered.
//
// Without NOTIFY_SOCKET every method does nothing. ReloadBegin and
// ReloadEnd are called on the goroutine running a reload (package
// arbiter's ReloadObserver, and cmd's SIGHUP handler around it); run
// owns the rest.
type service struct {
	n        *sdnotify.Notifier // nil: no manager listens
	watchdog time.Duration      // 0: no watchdog
	log      *slog.Logger
	// probe asks every watcher loop for its state within timeout and
	// sums them up; an error means a loop did not answer. A field so that
	// a test can stand in a loop that hangs, which nothing real can make
	// happen on demand.
	probe   func(ctx context.Context, timeout time.Duration) (string, error)
	refresh chan struct{} // a reload ended: run sends a fresh STATUS

	mu       sync.Mutex // orders the sends; guards the fields below
	reloads  int        // reloads running: SIGHUP's nests around the arbiter's
	failed   string     // why the last reload failed; "" if it did not
	stopping bool       // STOPPING=1 sent: nothing else goes out
	status   string     // the last STATUS= sent
	sendErr  string     // the last send's error, logged once
}

// newService reads the service manager's variables; without
// NOTIFY_SOCKET it returns a service that tells nobody. A malformed
// variable is an error naming it.
func newService(log *slog.Logger) (*service, error) {
	s := &service{log: log, refresh: make(chan struct{}, 1)}
	var err error
	if s.n, err = sdnotify.FromEnv(); err != nil || s.n == nil {
		return s, err
	}
	s.watchdog, err = sdnotify.WatchdogInterval()
	return s, err
}

// ReloadBegin sends RELOADING=1 with the time, as Type=notify-reload
// wants, unless a reload is already under way.
func (s *service) ReloadBegin() {
	if s.n == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads++
	if s.reloads == 1 {
		s.sendLocked("RELOADING=1", sdnotify.Monotonic(), "STATUS=reloading the configuration")
	}
}

// ReloadEnd sends READY=1 when the last reload under way ends, whether it
// applied or not: the arbiter runs on, on the old configuration if need
// be, and STATUS= says why.
func (s *service) ReloadEnd(err error) {
	if s.n == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reloads--
	if err != nil {
		s.failed = "last reload failed: " + firstLine(err)
	} else if s.reloads == 0 {
		s.failed = ""
	}
	if s.reloads > 0 {
		return
	}
	s.sendLocked("READY=1", "STATUS="+s.line(s.status))
	select {
	case s.refresh <- struct{}{}:
	default:
	}
}

// run reports the arbiter a to the manager until ctx is done (the
// shutdown begins), then sends STOPPING=1 and returns.
func (s *service) run(ctx context.Context, a *arbiter.Arbiter) {
	if s.n == nil {
		return
	}
	if s.probe == nil {
		s.probe = func(ctx context.Context, timeout time.Duration) (string, error) {
			return probeWatchers(ctx, a, timeout)
		}
	}
	defer s.stop()
	select {
	case <-ctx.Done():
		return
	case <-a.Started():
	}
	s.ready(ctx)
	s.loop(ctx)
}

// ready sends READY=1 once the autostart watchers are up (or failed to
// come up: the arbiter serves on, and STATUS= says how many run).
func (s *service) ready(ctx context.Context) {
	sum, err := s.probe(ctx, time.Second)
	if err != nil {
		sum = "started"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status = sum
	s.sendLocked("READY=1", "STATUS="+s.line(sum))
}

// loop pings the watchdog and keeps STATUS= current.
func (s *service) loop(ctx context.Context) {
	every := statusEvery
	if s.watchdog > 0 {
		every = s.watchdog / 2
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.refresh:
			s.update(ctx, every, false)
		case <-tick.C:
			s.update(ctx, every, s.watchdog > 0)
		}
	}
}

// update probes the watcher loops, waiting for them at most half the
// tick, so that a ping that follows is still within the interval. A loop
// that does not answer withholds the ping: a manager then restarts an
// arbiter that can no longer supervise.
func (s *service) update(ctx context.Context, every time.Duration, ping bool) {
	sum, err := s.probe(ctx, every/2)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("a watcher loop does not answer; watchdog not pinged", "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.reloads > 0 {
		// STATUS= says "reloading" until it ends; the ping still goes.
		if ping {
			s.sendLocked("WATCHDOG=1")
		}
		return
	}
	var msg []string
	if ping {
		msg = append(msg, "WATCHDOG=1")
	}
	if sum != s.status {
		s.status = sum
		msg = append(msg, "STATUS="+s.line(sum))
	}
	if len(msg) > 0 {
		s.sendLocked(msg...)
	}
}

// stop sends STOPPING=1: the manager then waits for the arbiter's exit
// (TimeoutStopSec) rather than for pings.
func (s *service) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sendLocked("STOPPING=1", "STATUS=stopping the watchers")
	s.stopping = true
}

// line is the STATUS= text: the summary and why the last reload failed.
func (s *service) line(sum string) string {
	if sum == "" {
		sum = "running"
	}
	if s.failed != "" {
		return sum + "; " + s.failed
	}
	return sum
}

// sendLocked sends a message; a failure is logged once, not at every ping.
func (s *service) sendLocked(assignments ...string) {
	if s.stopping {
		return
	}
	err := s.n.Send(assignments...)
	switch {
	case err != nil && err.Error() != s.sendErr:
		s.log.Warn("cannot notify the service manager", "err", err)
		s.sendErr = err.Error()
	case err == nil && s.sendErr != "":
		s.log.Info("notifying the service manager again")
		s.sendErr = ""
	}
}

// probeWatchers asks each watcher's loop for its status, within timeout
// in all, and sums them up: "2 watchers: 1 active, 1 stopped; 5 workers".
// A watcher removed meanwhile is not an error; a loop that does not answer
// is.
func probeWatchers(ctx context.Context, a *arbiter.Arbiter, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ws := a.Watchers()
	var counts [arbiter.Stopping + 1]int
	workers, n := 0, 0
	for _, w := range ws {
		st, err := w.Status(ctx)
		if errors.Is(err, arbiter.ErrStopped) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("watcher %s: %w", w.Name(), err)
		}
		n++
		counts[st.State]++
		workers += len(st.Procs)
	}
	var states []string
	for _, st := range []arbiter.State{arbiter.Active, arbiter.Starting, arbiter.Stopping, arbiter.Stopped} {
		if counts[st] > 0 {
			states = append(states, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	sum := plural(n, "watcher")
	if len(states) > 0 {
		sum += ": " + strings.Join(states, ", ")
	}
	return sum + "; " + plural(workers, "worker"), nil
}

// plural is "1 worker", "2 workers".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// firstLine is an error's first line, shortened: STATUS= is one line.
func firstLine(err error) string {
	msg, _, _ := strings.Cut(err.Error(), "\n")
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return msg
}
