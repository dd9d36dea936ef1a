package main_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// upgradeTab is the console, open in chromium through an upgrade.
type upgradeTab struct {
	ctx context.Context
	log *tabLog
}

// consoleHeader is what the page's header says of the arbiter.
type consoleHeader struct {
	Pid          string `json:"pid"`
	Version      string `json:"version"`
	UpgradedFrom string `json:"upgradedFrom"` // #arb-version's data-upgraded-from
}

const headerJS = `(() => {
	const v = document.querySelector('#arb-version');
	return {pid: document.querySelector('#arb-pid')?.textContent.trim() ?? '', version: v?.textContent.trim() ?? '', upgradedFrom: v?.dataset.upgradedFrom ?? ''};
})()`

// openUpgradeConsole opens r's console in chromium and waits until it
// shows the old version and web's 4 workers. Without chromium it returns
// nil on a developer's machine (the rest of the upgrade test still runs),
// and fails under CI=true, which installs it.
func openUpgradeConsole(t *testing.T, r *upgradeRig) *upgradeTab {
	t.Helper()
	exe := ""
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			exe = p
			break
		}
	}
	if exe == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("chromium not found (/usr/bin/chromium or on PATH); CI installs it (.ci/run)")
		}
		t.Log("chromium not found: the console is not checked through the upgrade")
		return nil
	}
	// The whole upgrade test runs with the browser open: a bound of its
	// own, longer than a console test's.
	ctx, cancel := context.WithTimeout(context.Background(), 3*browserDeadline)
	t.Cleanup(cancel)
	tab := &upgradeTab{log: &tabLog{name: "console tab"}}
	b := startBrowser(t, ctx, exe, chromedp.WithListener(tab.log.listen))
	tab.ctx = b.ctx
	open(t, tab.ctx, r.console, 4)
	tab.waitHeader(t, "the old version", func(h consoleHeader) bool {
		return h.Version == upgradeV1 && h.Pid == strconv.Itoa(r.cmd.Process.Pid)
	})
	return tab
}

// waitHeader polls the page's header until ok holds.
func (tab *upgradeTab) waitHeader(t *testing.T, what string, ok func(consoleHeader) bool) consoleHeader {
	t.Helper()
	deadline := time.Now().Add(pageWait)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithDeadline(tab.ctx, deadline)
		h, err := chromedp.Run(ctx, chromedp.Evaluate[consoleHeader](headerJS))
		cancel()
		if err == nil && ok(h) {
			return h
		}
		if time.Now().After(deadline) || tab.ctx.Err() != nil {
			t.Fatalf("timed out after %v waiting for the page's header to show %s; it shows %+v (error %v)", pageWait, what, h, err)
		}
		select {
		case <-tick.C:
		case <-tab.ctx.Done():
		}
	}
}

// afterUpgrade checks the page once the new image runs and a worker of
// extra was replaced by fresh: it came back by itself, live, with the same
// arbiter pid and the new version, says it was upgraded from the old one,
// lists the upgrade among the events, shows the new worker (it is still
// updating), and reported no error (no failed request, no exception).
func (tab *upgradeTab) afterUpgrade(t *testing.T, pid, fresh int) {
	t.Helper()
	if tab == nil {
		return
	}
	tab.waitHeader(t, fmt.Sprintf("pid %d, version %s upgraded from %s", pid, upgradeV2, upgradeV1), func(h consoleHeader) bool {
		return h.Pid == strconv.Itoa(pid) && h.Version == upgradeV2 && h.UpgradedFrom == upgradeV1
	})
	v := waitView(t, tab.ctx, "extra", fmt.Sprintf("a live page with worker %d of extra", fresh), func(v consoleView) bool {
		return v.Conn == "live" && slices.Contains(v.Pids, fresh)
	})
	if v.event("upgrade", pid) < 0 && v.event("upgrade", 0) < 0 {
		t.Errorf("the page's events do not list the upgrade: %v", v)
	}
	tab.log.check(t, tab.ctx)
}
