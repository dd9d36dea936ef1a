package main_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// An autoscaled watcher in the console: its queue gauge and number, its
// queue and worker count drawn over time, and the scale event with its
// sizes. Six connections that send nothing, on a pool whose workers take
// one each and wait for a line: the pool grows to its max of 4, and 2
// stay queued.
func TestBrowserAutoscale(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserDeadline)
	defer cancel()
	port := testproc.FreePort(t)
	a, url := startConsoleINI(t, t.TempDir(), consoleHead+fmt.Sprintf(`[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 10ms
numprocesses = 1
autoscale.max = 4
autoscale.idle = 3600
graceful_timeout = 1
`, port))
	log := &tabLog{name: "tab"}
	b := startBrowser(t, ctx, exe, chromedp.WithListener(log.listen))
	tab := b.ctx
	open(t, tab, url, 1)
	for range 6 {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	// The gauge's number, whether it shows, the gauge's value and max,
	// and how many points the two sparklines have.
	const scaleJS = `(() => {
		const w = document.querySelector('[data-watcher="web"]');
		const box = w.querySelector('[data-role="autoscale"]');
		const pts = (cls) => (box.querySelector('svg.' + cls + ' polyline').getAttribute('points') || '').split(' ').filter(Boolean).length;
		const ev = [...document.querySelectorAll('#events [data-kind="scale"] .ev-d')].map((e) => e.textContent);
		return [box.hidden ? 'hidden' : 'shown', w.querySelector('[data-role="queue"]').textContent,
			String(box.querySelector('meter').value) + '/' + String(box.querySelector('meter').max),
			String(pts('queue')), String(pts('workers')), ev.join('|')];
	})()`
	var got []string
	waitView(t, tab, "web", "4 workers, 2 queued, drawn over time, and the scale event", func(v consoleView) bool {
		var err error
		got, err = chromedp.Run(tab, chromedp.Evaluate[[]string](scaleJS))
		return err == nil && v.Count == "4" && got[0] == "shown" && got[1] == "2" && got[2] == "2/4" &&
			got[3] != "0" && got[3] != "1" && got[4] == got[3] && strings.Contains(got[5], "→ 4 · queue ")
	})
	t.Logf("console shows: %q", got)
	log.check(t, tab)
	b.close()
	a.stop(t, syscall.SIGTERM)
}
