package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// The upgrade in place, driven from here: SIGUSR2 and the upgrade command
// check the new binary (run as a child with --check-upgrade), then the
// arbiter freezes (arbiter.Upgrade) and this file writes the hand-over
// document (the arbiter's state, the configuration's sources, the event
// sequence, the listeners) and execs the new binary, same pid. The new
// image finds the document (inherited.go) and restores; if it cannot, it
// execs the old binary, kept open as an fd, with the same document.

// checkTimeout bounds the new binary's --check-upgrade run.
const checkTimeout = 10 * time.Second

// upgradeDoc is the hand-over document of this command.
type upgradeDoc struct {
	handover.Header
	// Attempt numbers the upgrades of this arbiter (its pid) since it
	// first started, failed ones included.
	Attempt int `json:"attempt"`
	// From is the version before, Binary the file executed.
	Binary string `json:"binary"`
	// Since is when the old image was asked to upgrade, for the hand-over
	// time the new one reports.
	Since time.Time `json:"since"`
	// ReloadConfig asks the new image to reload the configuration file
	// once it runs (an upgrade keeps the configuration in effect).
	ReloadConfig bool            `json:"reloadconfig,omitempty"`
	Sources      []config.Source `json:"sources"`
	// Circus is the [circus] section in effect (reloadconfig keeps the
	// one the arbiter started with, whatever the file says now).
	Circus config.Circus `json:"circus"`
	Seq    uint64        `json:"seq"`
	// Subscribers is how many event subscribers the old image had: the
	// new one holds its events until they are back (a second at most).
	Subscribers int               `json:"subscribers"`
	Listeners   map[string]int    `json:"listeners"`
	Arbiter     *arbiter.Handover `json:"arbiter"`
}

// upgrader runs upgrades in place; it is the upgrade command's Upgrader.
type upgrader struct {
	log     *slog.Logger
	a       *arbiter.Arbiter
	ep      *endpoints
	svc     *service // told, as of a reload: RELOADING=1, then the new image's READY=1
	exe     string   // the binary this image runs, for an upgrade without --binary
	version string

	mu      sync.Mutex
	running bool
	attempt int            // the last attempt's number
	last    control.Object // what it came to
	ctx     context.Context
	// runs is the upgrade under way, which serve waits for once the
	// arbiter has stopped (it then ends at once: no exec once stopping).
	runs sync.WaitGroup
}

// newUpgrader is the upgrader of a, whose attempts so far and the last
// one's outcome in (nil for an arbiter that was not handed over) are kept.
func newUpgrader(ctx context.Context, a *arbiter.Arbiter, ep *endpoints, svc *service, in *inherited, log *slog.Logger) *upgrader {
	u := &upgrader{log: log, a: a, ep: ep, svc: svc, version: buildVersion(), ctx: ctx}
	u.exe, _ = os.Executable()
	u.last = control.Object{{Key: "attempt", Value: 0}}
	if in != nil {
		u.attempt = in.doc.Attempt
		u.last = in.outcome(u.version)
	}
	return u
}

// Start checks binary and begins the upgrade once the command's reply is
// out (see commands.Upgrader).
func (u *upgrader) Start(binary string, reload bool) (control.Object, error) {
	if binary == "" {
		binary = u.exe
	}
	if !filepath.IsAbs(binary) {
		return nil, fmt.Errorf("upgrade: %q: the binary must be an absolute path", binary)
	}
	u.mu.Lock()
	if u.running {
		u.mu.Unlock()
		return nil, errors.New("upgrade: one is under way")
	}
	u.running = true
	u.mu.Unlock()
	to, err := checkUpgrade(u.ctx, u.a, binary)
	if err != nil {
		u.failed(0, err)
		return nil, err
	}
	u.mu.Lock()
	u.attempt++
	n := u.attempt
	u.mu.Unlock()
	since := time.Now()
	u.log.Info("upgrading in place", "attempt", n, "from", u.version, "to", to, "binary", binary)
	u.runs.Go(func() { u.run(n, binary, since, reload) })
	return control.Object{
		{Key: "attempt", Value: n}, {Key: "pid", Value: os.Getpid()},
		{Key: "from", Value: u.version}, {Key: "to", Value: to},
	}, nil
}

// Last reports the last attempt (see commands.Upgrader).
func (u *upgrader) Last() control.Object {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append(control.Object{{Key: "pid", Value: os.Getpid()}, {Key: "version", Value: u.version}}, u.last...)
}

// run hands the arbiter over; it returns only if the exec did not happen.
func (u *upgrader) run(n int, binary string, since time.Time, reload bool) {
	// The upgrade command's reply (and any other) goes out first: the
	// exec drops every connection.
	dctx, cancel := context.WithTimeout(u.ctx, 200*time.Millisecond)
	_ = u.ep.ctl.Drain(dctx)
	cancel()
	u.svc.ReloadBegin()
	err := u.a.Upgrade(u.ctx, func(h *arbiter.Handover) error { return u.exec(h, n, binary, since, reload) })
	u.svc.ReloadEnd(err)
	u.failed(n, err)
}

// failed records and reports an attempt that did not exec.
func (u *upgrader) failed(n int, err error) {
	u.log.Error("upgrade failed; this image goes on", "attempt", n, "err", err)
	u.ep.bus.Publish(pubsub.Event{Kind: pubsub.UpgradeFailed, Pid: os.Getpid(), Reason: err.Error()})
	u.mu.Lock()
	defer u.mu.Unlock()
	u.running = false
	if n > 0 {
		u.last = control.Object{{Key: "attempt", Value: n}, {Key: "error", Value: err.Error()}}
	}
}

// exec writes the document and executes binary; it returns only on
// failure, with everything it kept open closed or close-on-exec again.
func (u *upgrader) exec(h *arbiter.Handover, n int, binary string, since time.Time, reload bool) (err error) {
	if err := u.ctx.Err(); err != nil {
		return fmt.Errorf("upgrade: the arbiter is stopping: %w", err)
	}
	u.log.Debug("upgrade: every watcher frozen and its state written down", "after", time.Since(since))
	cfg := u.a.Config()
	exe, err := unix.Open("/proc/self/exe", unix.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("upgrade: keeping the old binary for the way back: %w", err)
	}
	defer unix.Close(exe)
	// Every event published so far reaches the subscribers, whose next
	// come from the new image, numbered on.
	fctx, cancel := context.WithTimeout(u.ctx, 100*time.Millisecond)
	u.ep.relay.Flush(fctx)
	cancel()
	doc := upgradeDoc{
		Header:  handover.Header{Format: handover.Format, Version: u.version},
		Attempt: n, Binary: binary, Since: since, ReloadConfig: reload,
		Sources: cfg.Sources, Circus: cfg.Circus,
		Seq:         u.ep.bus.Seq(),
		Subscribers: u.ep.relay.Subscribed(),
		Arbiter:     h,
	}
	if doc.Listeners, err = handover.Listeners(); err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	defer handover.ListenersBack() // reached only if the exec failed
	fd, err := handover.Write(doc)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	u.log.Debug("upgrade: executing the new binary", "after", time.Since(since))
	env := append(os.Environ(),
		handover.EnvState+"="+strconv.Itoa(fd),
		handover.EnvExe+"="+strconv.Itoa(exe))
	return fmt.Errorf("upgrade: exec %s: %w", binary, syscall.Exec(binary, os.Args, env))
}

// checkUpgrade runs binary --check-upgrade, a child of a (nothing here
// may wait for a child: the arbiter's reaper takes every exit), and
// returns its version once it says it reads the document this binary
// writes.
func checkUpgrade(ctx context.Context, a *arbiter.Arbiter, binary string) (string, error) {
	out, err := a.RunProgram(ctx, binary, []string{"--check-upgrade"}, checkTimeout)
	if err != nil {
		return "", fmt.Errorf("upgrade: %s --check-upgrade: %w", binary, err)
	}
	var min, max int
	var version string
	line := headLine(string(out))
	for l := range strings.Lines(string(out)) {
		if strings.HasPrefix(l, "ringmaster-handover ") {
			line = strings.TrimSpace(l)
		}
	}
	if _, err := fmt.Sscanf(line, "ringmaster-handover %d %d %s", &min, &max, &version); err != nil {
		return "", fmt.Errorf("upgrade: %s --check-upgrade answered %q: not a Ringmaster arbiter", binary, line)
	}
	if handover.Format < min || handover.Format > max {
		return "", fmt.Errorf("upgrade: %s (%s) reads hand-over formats %d to %d, not this one's %d", binary, version, min, max, handover.Format)
	}
	return version, nil
}

// printCheckUpgrade is --check-upgrade's answer: the hand-over formats this
// binary reads, and its version.
func printCheckUpgrade(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "ringmaster-handover %d %d %s\n", handover.MinFormat, handover.Format, buildVersion())
}

// headLine is the first line of s, trimmed.
func headLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}
