package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// upgradeWait bounds how long upgrade waits for the new image (or the old
// one, back) to answer; upgradePoll is the pause between its queries.
const (
	upgradeWait = 30 * time.Second
	upgradePoll = 20 * time.Millisecond
)

const upgradeHelp = `Upgrades the arbiter in place: it executes its binary again (or PATH,
with --binary), keeping its pid, every process, socket and output pipe, and
the watchers' state. The new binary is checked first; the command then
waits for the new image to answer and prints the versions and how long the
hand-over took, or why it failed (the old binary then goes on, with nothing
lost), and exits 1. The configuration in effect is kept as it is; with
--reloadconfig the new image then reads the file again, as reloadconfig. SIGUSR2 to the arbiter does the same without waiting.
Ringmaster's own: Circus cannot upgrade in place.`

// upgradeReply is the upgrade command's reply: the attempt started, or,
// for a query, the last one.
type upgradeReply struct {
	Attempt    int     `json:"attempt"`
	Pid        int     `json:"pid"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Version    string  `json:"version"`
	Error      string  `json:"error"`
	HandoverMS float64 `json:"handover_ms"`
}

// upgrade starts an upgrade and waits for its outcome.
func upgrade(ctx context.Context, g globals, e environ, a *parsed) error {
	endpoint := g.controlEndpoint(e)
	props := map[string]any{}
	if b, ok := a.set["binary"]; ok {
		abs, err := filepath.Abs(b)
		if err != nil {
			return err
		}
		props["binary"] = abs
	}
	if a.on("reloadconfig") {
		props["reloadconfig"] = true
	}
	started, err := upgradeCall(ctx, g, endpoint, "upgrade", props)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "upgrading pid %d from %s to %s...\n", started.Pid, started.From, started.To)
	ctx, cancel := context.WithTimeout(ctx, upgradeWait)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("upgrade: no answer from the arbiter within %s (endpoint %s)", upgradeWait, endpoint)
		case <-time.After(upgradePoll):
		}
		// A new connection each time: the exec dropped the old one, and
		// a query sent before it would never be answered.
		last, err := upgradeCall(ctx, g, endpoint, "upgradestatus", nil)
		if err != nil || last.Attempt < started.Attempt {
			continue
		}
		if last.Error != "" {
			return errors.New(last.Error)
		}
		fmt.Fprintf(e.stdout, "upgraded: pid %d, %s -> %s, hand-over %.1f ms\n", last.Pid, last.From, last.To, last.HandoverMS)
		return nil
	}
}

// upgradeCall sends one upgrade or upgradestatus request on a connection
// of its own.
func upgradeCall(ctx context.Context, g globals, endpoint, command string, props map[string]any) (*upgradeReply, error) {
	cl, err := control.Dial(endpoint, g.timeout)
	if err != nil {
		return nil, fmt.Errorf("%w (endpoint %s)", err, endpoint)
	}
	defer cl.Close()
	raw, err := pollCall(ctx, g, cl, endpoint, command, props)
	if err != nil {
		return nil, err
	}
	var r upgradeReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("unexpected reply: %v", err)
	}
	return &r, nil
}
