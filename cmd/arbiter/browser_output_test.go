package main_test

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserDeadWorkerOutput (issue 16): a worker that says why it
// cannot start and exits, until its watcher stops for flapping. No worker
// is left, yet the watcher's output button shows their last words.
func TestBrowserDeadWorkerOutput(t *testing.T) {
	t.Parallel()
	a, b, log := consoleTab(t, t.TempDir(), `[watcher:crashy]
cmd = /bin/sh -c "echo opening db; echo boom: cannot open db >&2; exit 1"
flapping.attempts = 3
flapping.window = 30
flapping.retry_in = 600
`, "crashy")
	tab := b.ctx
	waitView(t, tab, "crashy", "the watcher stopped after flapping, no worker left", func(v consoleView) bool {
		return v.State == "stopped" && len(v.Pids) == 0
	})
	click(t, tab, `[data-watcher="crashy"] .w-head button[data-action="tail"]`)
	const panelJS = `(() => { const p = document.querySelector('[data-watcher="crashy"] .tail');
		return p ? {title: p.querySelector('.tail-title').textContent, lines: [...p.querySelectorAll('.ln')].map((l) => ({text: l.textContent, err: l.classList.contains('err')}))} : null; })()`
	type panel struct {
		Title string `json:"title"`
		Lines []struct {
			Text string `json:"text"`
			Err  bool   `json:"err"`
		} `json:"lines"`
	}
	var p *panel
	waitView(t, tab, "crashy", "the dead workers' last lines in the output panel", func(consoleView) bool {
		got, err := chromedp.Run(tab, chromedp.Evaluate[*panel](panelJS))
		if err != nil || got == nil {
			return false
		}
		p = got
		booms := 0
		for _, l := range got.Lines {
			if l.Err && strings.HasSuffix(l.Text, "boom: cannot open db") {
				booms++
			}
		}
		return booms >= 3
	})
	if !strings.Contains(p.Title, "crashy") {
		t.Errorf("panel title %q", p.Title)
	}
	pids := regexp.MustCompile(`\[(\d+)\]`)
	for _, l := range p.Lines {
		if !pids.MatchString(l.Text) {
			t.Errorf("line %q of every worker's output does not say whose it is", l.Text)
		}
	}
	// The same lines from the command line.
	if out := ctlOK(t, a.endpoint, "logs", "crashy"); !strings.Contains(out, "stderr: boom: cannot open db") {
		t.Errorf("circusctl logs crashy:\n%s", out)
	}
	log.check(t, tab)
	b.close()
	a.stop(t, syscall.SIGTERM)
}

// TestBrowserExitedWorkerTail: the row an exited worker leaves for a few
// seconds keeps its tail button, which shows that worker's output.
func TestBrowserExitedWorkerTail(t *testing.T) {
	t.Parallel()
	a, b, log := consoleTab(t, t.TempDir(), `[watcher:once]
cmd = /bin/sh -c "echo ready to serve; exec sleep 1000"
respawn = false
`, "once")
	tab := b.ctx
	v := waitView(t, tab, "once", "the worker's row", func(v consoleView) bool { return len(v.Pids) == 1 })
	pid := v.Pids[0]
	waitFor(t, "the worker's line kept", pageWait, func() bool {
		return strings.Contains(ctlOK(t, a.endpoint, "logs", "once"), "ready to serve")
	})
	a.call(t, "kill", map[string]any{"name": "once", "pid": strconv.Itoa(pid), "signum": 9})
	ghost := fmt.Sprintf(`[data-watcher="once"] tr[data-exited-pid="%d"] button[data-action="tail"]`, pid)
	waitView(t, tab, "once", "the exited worker's row", func(consoleView) bool {
		n, err := chromedp.Run(tab, chromedp.Evaluate[int](fmt.Sprintf(`document.querySelectorAll(%q).length`, ghost)))
		return err == nil && n == 1
	})
	click(t, tab, ghost)
	const panelJS = `(() => { const p = document.querySelector('[data-watcher="once"] .tail');
		return p ? p.querySelector('.tail-title').textContent + ' | ' + p.querySelector('.tail-status').textContent + ' | ' + p.querySelector('.tail-log').textContent : ''; })()`
	waitView(t, tab, "once", "the exited worker's output", func(consoleView) bool {
		s, err := chromedp.Run(tab, chromedp.Evaluate[string](panelJS))
		return err == nil && strings.Contains(s, fmt.Sprintf("pid %d", pid)) && strings.Contains(s, "worker exited") && strings.Contains(s, "ready to serve")
	})
	log.check(t, tab)
	b.close()
	a.stop(t, syscall.SIGTERM)
}
