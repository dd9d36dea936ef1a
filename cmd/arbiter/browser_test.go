package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// The web console in a real headless browser (issue 7): Debian's chromium,
// driven over the DevTools protocol, against the arbiter binary. The page is
// read only through the DOM hooks of the console's contract (#conn,
// [data-watcher], [data-role], [data-pid], [data-action], #events).

const (
	// browserDeadline bounds a whole browser test; one normally takes a few
	// seconds.
	browserDeadline = 90 * time.Second
	// pageWait bounds one wait for the page to show something.
	pageWait = 20 * time.Second
)

// consoleHead is the [circus] section of a console test's file: the
// console on a free loopback port.
const consoleHead = `[circus]
pubsub_endpoint = tcp://127.0.0.1:0
httpd = true
httpd_host = 127.0.0.1
httpd_port = 0

`

// consoleINI is a console on a free loopback port and one watcher, web, of
// 2 workers that sleep until killed.
const consoleINI = consoleHead + `[watcher:web]
cmd = WORKER sleep
numprocesses = 2
graceful_timeout = 2
`

// chromium returns the browser to drive. Without one the test is skipped on
// a developer's machine, but fails under CI, which installs it: a skip
// there would hide a broken install.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium not found (/usr/bin/chromium or on PATH); CI installs it (.ci/run)")
	}
	t.Skip("chromium not found (/usr/bin/chromium or on PATH); Debian: apt-get install chromium")
	return ""
}

// startConsole starts the arbiter on consoleINI and returns it with the URL
// of its console, read from its log line.
func startConsole(t *testing.T) (*ctlArbiter, string) {
	t.Helper()
	return startConsoleINI(t, t.TempDir(), consoleINI)
}

// startConsoleINI is startConsole on ini, written in dir.
func startConsoleINI(t *testing.T, dir, ini string) (*ctlArbiter, string) {
	t.Helper()
	a := startCtl(t, dir, ini)
	re := regexp.MustCompile(`msg="serving the web console".* url=(http://\S+)`)
	var url string
	waitFor(t, "the console's URL in the arbiter's log", pageWait, func() bool {
		if m := re.FindStringSubmatch(a.out.String()); m != nil {
			url = m[1]
		}
		return url != ""
	})
	return a, url
}

// consoleTab starts an arbiter on consoleHead and sections, written in
// dir, and a browser (its life bounded by browserDeadline) whose tab shows
// its console, once watcher's panel is there.
func consoleTab(t *testing.T, dir, sections, watcher string) (*ctlArbiter, *browser, *tabLog) {
	t.Helper()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserDeadline)
	t.Cleanup(cancel) // after the browser's and the arbiter's own cleanups
	a, url := startConsoleINI(t, dir, consoleHead+sections)
	log := &tabLog{name: "tab"}
	b := startBrowser(t, ctx, exe, chromedp.WithListener(log.listen))
	nav, cancelNav := context.WithTimeout(b.ctx, pageWait)
	defer cancelNav()
	sel := fmt.Sprintf(`[data-watcher=%q]`, watcher)
	if err := chromedp.Do(nav, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
		t.Fatalf("open the console at %s: %v", url, err)
	}
	return a, b, log
}

// browser is a headless chromium with a fresh profile.
type browser struct {
	ctx   context.Context // its first tab; chromedp.NewContext(ctx) opens another
	pid   int
	home  string           // its HOME, which holds its profile too
	out   *testproc.Buffer // chromium's stdout and stderr
	close func()           // closes it and checks that no process of it is left
}

// startBrowser starts chromium exe, its life bounded by parent. opts apply to
// the first tab. The browser is closed at the end of the test, if not
// before.
func startBrowser(t *testing.T, parent context.Context, exe string, opts ...chromedp.ContextOption) *browser {
	t.Helper()
	b := &browser{home: t.TempDir(), out: &testproc.Buffer{}}
	actx, acancel := chromedp.NewExecAllocator(parent, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.NoSandbox, // CI runs as root
		chromedp.UserDataDir(filepath.Join(b.home, "profile")),
		// Nothing under the user's own home (~/.pki, ~/.config/chromium/Crash
		// Reports), and every process of this browser, the crash handlers
		// too, names its home on its command line.
		chromedp.Env("HOME="+b.home, "XDG_CONFIG_HOME="+filepath.Join(b.home, ".config"), "XDG_CACHE_HOME="+filepath.Join(b.home, ".cache")),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(b.out),
	)...)
	ctx, cancel := chromedp.NewContext(actx, opts...)
	b.ctx = ctx
	if err := chromedp.Do(ctx); err != nil { // starts it
		acancel()
		t.Fatalf("start chromium: %v\n%s", err, b.out)
	}
	b.pid = chromedp.FromContext(ctx).Browser.Process().Pid
	var once sync.Once
	b.close = func() {
		once.Do(func() {
			cancel()
			acancel() // kills chromium if it has not exited yet, and waits for it
			// Its children (zygote, renderers, GPU and network
			// services, crash handlers) each carry its home on their
			// command line, wherever they were reparented.
			deadline := time.Now().Add(10 * time.Second)
			for {
				left := procsUsing(b.home)
				if len(left) == 0 && gone(b.pid) {
					return
				}
				if time.Now().After(deadline) {
					t.Errorf("chromium (pid %d, gone: %v) left processes behind 10s after it was closed: %v", b.pid, gone(b.pid), left)
					for _, pid := range left {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	t.Cleanup(func() {
		b.close()
		if t.Failed() {
			t.Logf("chromium output:\n%s", b.out)
		}
	})
	return b
}

// procsUsing returns the live processes with dir, or a path under it, on
// their command line.
func procsUsing(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || procState(pid) == "Z" {
			continue
		}
		// Chromium's children rewrite their command line as one string,
		// arguments separated by spaces.
		for _, arg := range strings.FieldsFunc(string(b), func(r rune) bool { return r == 0 || r == ' ' }) {
			if _, path, ok := strings.Cut(arg, "="); ok {
				arg = path
			}
			if arg == dir || strings.HasPrefix(arg, dir+"/") {
				pids = append(pids, pid)
				break
			}
		}
	}
	return pids
}

// consoleView is what a page shows of one watcher and of the events.
type consoleView struct {
	Conn   string         `json:"conn"`   // #conn's data-state
	Found  bool           `json:"found"`  // the watcher's element is there
	State  string         `json:"state"`  // its [data-role=state]
	Count  string         `json:"count"`  // its [data-role=count]
	Pids   []int          `json:"pids"`   // its rows' data-pid, in page order
	Events []consoleEvent `json:"events"` // #events, newest first
}

// consoleEvent is an entry of #events.
type consoleEvent struct {
	Kind string `json:"kind"` // data-kind
	Pid  int    `json:"pid"`  // data-pid, 0 without one
}

// event returns the index in #events of the entry of kind for pid, -1 if
// there is none.
func (v consoleView) event(kind string, pid int) int {
	return slices.Index(v.Events, consoleEvent{kind, pid})
}

func (v consoleView) String() string {
	return fmt.Sprintf("conn=%q watcher found=%v state=%q count=%q rows=%v, %d events %v", v.Conn, v.Found, v.State, v.Count, v.Pids, len(v.Events), v.Events)
}

// viewJS reads a consoleView of watcher %s (a JSON string).
const viewJS = `(() => {
	const v = {conn: document.querySelector('#conn')?.dataset.state ?? '', found: false, state: '', count: '', pids: [], events: []};
	const w = document.querySelector('[data-watcher=' + JSON.stringify(%s) + ']');
	if (w) {
		v.found = true;
		v.state = w.querySelector('[data-role="state"]')?.textContent.trim() ?? '';
		v.count = w.querySelector('[data-role="count"]')?.textContent.trim() ?? '';
		for (const r of w.querySelectorAll('[data-pid]')) v.pids.push(Number(r.dataset.pid));
	}
	for (const e of document.querySelectorAll('#events [data-kind]')) v.events.push({kind: e.dataset.kind, pid: Number(e.dataset.pid || 0)});
	return v;
})()`

// waitView polls the page of tab until its view of watcher name satisfies
// ok, and fails the test with the last view after pageWait.
func waitView(t *testing.T, tab context.Context, name, what string, ok func(consoleView) bool) consoleView {
	t.Helper()
	js := fmt.Sprintf(viewJS, strconv.Quote(name))
	deadline := time.Now().Add(pageWait)
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithDeadline(tab, deadline)
		v, err := chromedp.Run(ctx, chromedp.Evaluate[consoleView](js))
		cancel()
		if err == nil && ok(v) {
			return v
		}
		if time.Now().After(deadline) || tab.Err() != nil {
			t.Fatalf("timed out after %v waiting for the page to show %s; it shows: %v (error %v)", pageWait, what, v, err)
		}
		select {
		case <-tick.C:
		case <-tab.Done():
		}
	}
}

// click clicks the button sel, as a user would: mouse events at its
// centre, after scrolling it into view.
func click(t *testing.T, tab context.Context, sel string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel))); err != nil {
		t.Fatalf("click %s: %v", sel, err)
	}
}

// open loads the console in tab and waits until it is live and shows
// watcher web with n workers.
func open(t *testing.T, tab context.Context, url string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, pageWait)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(`[data-watcher="web"]`))); err != nil {
		t.Fatalf("open the console at %s: %v", url, err)
	}
	waitView(t, tab, "web", fmt.Sprintf("a live console with %d workers", n), func(v consoleView) bool {
		return v.Conn == "live" && v.State == "active" && v.Count == strconv.Itoa(n) && len(v.Pids) == n
	})
}

// TestBrowserConsole drives the console as an operator does: it sees the
// 2 workers, adds one with +, kills one and sees it replaced, with the reap
// and the spawn in the timeline, and the pids it shows are the arbiter's
// real workers. It saves a screenshot in light and in dark.
func TestBrowserConsole(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserDeadline)
	defer cancel()
	a, url := startConsole(t)
	log := &tabLog{name: "tab"}
	b := startBrowser(t, ctx, exe, chromedp.WithListener(log.listen))
	tab := b.ctx
	t0 := time.Now()
	step := func(what string) {
		t.Logf("%-40s %v", what, time.Since(t0).Round(time.Millisecond))
		t0 = time.Now()
	}

	open(t, tab, url, 2)
	step("console live with 2 workers")

	click(t, tab, `[data-watcher="web"] button[data-action="incr"]`)
	v := waitView(t, tab, "web", "3 workers after incr", func(v consoleView) bool {
		return v.Count == "3" && len(v.Pids) == 3
	})
	step("incr: 3 workers")
	before := v.Pids

	victim := before[1]
	click(t, tab, fmt.Sprintf(`[data-watcher="web"] [data-pid="%d"] button[data-action="kill"]`, victim))
	var fresh int
	v = waitView(t, tab, "web", fmt.Sprintf("pid %d replaced by a new worker", victim), func(v consoleView) bool {
		fresh = 0
		for _, p := range v.Pids {
			if !slices.Contains(before, p) {
				fresh = p
			}
		}
		return !slices.Contains(v.Pids, victim) && fresh != 0 && len(v.Pids) == 3 && v.Count == "3"
	})
	step(fmt.Sprintf("kill %d: replaced by %d", victim, fresh))
	v = waitView(t, tab, "web", fmt.Sprintf("the reap of %d and the spawn of %d in #events", victim, fresh), func(v consoleView) bool {
		return v.event("reap", victim) >= 0 && v.event("spawn", fresh) >= 0
	})
	step("reap and spawn in #events")
	// Newest first: the replacement's spawn is above every earlier spawn.
	for _, p := range before {
		if i, j := v.event("spawn", fresh), v.event("spawn", p); j >= 0 && i > j {
			t.Errorf("#events not newest first: the spawn of %d, after the kill, is entry %d, the spawn of %d, before it, entry %d: %v", fresh, i, p, j, v.Events)
		}
	}

	// The pids on the page are the arbiter's real workers.
	if got := ctlPids(t, a.endpoint, "web"); !sameSet(got, v.Pids) {
		t.Errorf("the page shows workers %v, circusctl list web says %v", v.Pids, got)
	}
	for _, pid := range v.Pids {
		if ppid := procPPid(pid); ppid != a.cmd.Process.Pid {
			t.Errorf("pid %d on the page: parent %d, want the arbiter %d", pid, ppid, a.cmd.Process.Pid)
		}
		if args := procArgs(pid); len(args) < 2 || args[0] != worker || args[1] != "sleep" {
			t.Errorf("pid %d on the page runs %q, want %s sleep", pid, args, worker)
		}
	}
	if !gone(victim) {
		t.Errorf("killed pid %d still exists", victim)
	}
	step("pids checked with circusctl and /proc")

	light, dark := screenshots(t, tab)
	t.Logf("screenshots of the console: %s (light), %s (dark)", light, dark)
	step("screenshots")
	log.check(t, tab)

	b.close()
	a.stop(t, syscall.SIGTERM)
	step("browser closed, arbiter stopped")
}

// readyRow is a worker's row as TestBrowserReadiness reads it.
type readyRow struct {
	Pid    int    `json:"pid"`
	Mark   string `json:"mark"`   // the visible mark's text, "" when hidden
	Status string `json:"status"` // the status text, "" when not shown
}

// TestBrowserReadiness: a worker that is not ready yet is shown starting,
// with the STATUS= it sent, until it sends READY=1; then the mark goes, its
// new status shows, and the watcher becomes active.
func TestBrowserReadiness(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gate := filepath.Join(dir, "gate")
	a, b, log := consoleTab(t, dir, `[watcher:web]
cmd = WORKER readywhen `+gate+`
ready = notify
ready_timeout = 120
graceful_timeout = 2
`, "web")
	tab := b.ctx
	const rowsJS = `[...document.querySelectorAll('[data-watcher="web"] tr[data-pid]')].map((r) => {
		const m = r.querySelector('.mark'), s = r.querySelector('.status');
		const shown = (e) => e && !e.hidden && e.getBoundingClientRect().width > 0;
		return {pid: Number(r.dataset.pid), mark: shown(m) ? m.textContent : '', status: shown(s) ? s.textContent : ''};
	})`
	rows := func(what string, ok func(v consoleView, rs []readyRow) bool) []readyRow {
		t.Helper()
		var rs []readyRow
		waitView(t, tab, "web", what, func(v consoleView) bool {
			var err error
			rs, err = chromedp.Run(tab, chromedp.Evaluate[[]readyRow](rowsJS))
			return err == nil && ok(v, rs)
		})
		return rs
	}
	rs := rows("the worker starting, waiting for its gate", func(v consoleView, rs []readyRow) bool {
		return len(rs) == 1 && rs[0].Mark == "starting" && rs[0].Status == "waiting for gate"
	})
	t.Logf("before READY=1: %+v", rs)
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rs = rows("the worker ready, serving, and the watcher active", func(v consoleView, rs []readyRow) bool {
		return v.State == "active" && len(rs) == 1 && rs[0].Mark == "" && rs[0].Status == "serving"
	})
	t.Logf("after READY=1: %+v", rs)
	log.check(t, tab)
	b.close()
	a.stop(t, syscall.SIGTERM)
}

// screenshots saves a full-page screenshot of tab in light and in dark
// (prefers-color-scheme), as console-TIME.png and console-dark-TIME.png in
// $RINGMASTER_ARTIFACTS, else in ringmaster-artifacts under the system's
// temporary directory, where they outlive the test. Their paths go to
// last-console-screenshot beside them, light first, one a line.
func screenshots(t *testing.T, tab context.Context) (light, dark string) {
	t.Helper()
	dir := os.Getenv("RINGMASTER_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "ringmaster-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(tab, pageWait)
	defer cancel()

	// For a picture with figures in it, give the first stats sample (one
	// every 2 s) a moment to arrive; the test does not depend on it.
	_, _ = chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector('#arb-cpu')?.textContent.trim() !== '–'`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(5*time.Second)))

	ts := time.Now().Format("20060102-150405")
	shot := func(name string) (string, string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name+"-"+ts+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		look, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[document.documentElement, document.body].map((e) => {
			const s = getComputedStyle(e);
			return s.backgroundColor + ' ' + s.color;
		}).join(', ')`))
		if err != nil {
			t.Fatal(err)
		}
		return path, look
	}
	light, lightLook := shot("console")

	_, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
		Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}},
	})
	if err != nil {
		t.Fatalf("emulate prefers-color-scheme: dark: %v", err)
	}
	if on, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`matchMedia('(prefers-color-scheme: dark)').matches`)); err != nil || !on {
		t.Fatalf("prefers-color-scheme: dark not in effect (%v, %v)", on, err)
	}
	dark, darkLook := shot("console-dark")
	if darkLook == lightLook {
		t.Errorf("the console looks the same in dark as in light (html, body background and colour: %s)", lightLook)
	}

	if err := os.WriteFile(filepath.Join(dir, "last-console-screenshot"), []byte(light+"\n"+dark+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return light, dark
}

// tabLog is what a tab reports, through a chromedp listener: its errors
// (uncaught exceptions, console.error and console.assert, and the
// browser's own log at level error: a CSP violation, a failed request, a
// WebSocket refused) and the stats messages its WebSocket received.
type tabLog struct {
	name string

	mu     sync.Mutex
	errors []string
	stats  int
}

// listen is the listener; the tab's loop calls it for each event.
func (l *tabLog) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		msg = fmt.Sprintf("uncaught: %s (%s:%d)", msg, d.URL, d.LineNumber+1)
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		var args []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				args = append(args, string(a.Value))
			} else {
				args = append(args, a.Description)
			}
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level != cdplog.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("%s error: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	case *network.EventWebSocketFrameReceived:
		var m struct{ Type string }
		if json.Unmarshal(ev.Response.PayloadData, &m) == nil && m.Type == "stats" {
			l.mu.Lock()
			l.stats++
			l.mu.Unlock()
		}
		return
	default:
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errors = append(l.errors, msg)
}

// check fails the test with each error tab reported so far.
func (l *tabLog) check(t *testing.T, tab context.Context) {
	t.Helper()
	// A listener sees the tab's events in order, before the reply to a
	// later command: after this round trip every error so far is recorded.
	if _, err := chromedp.Run(tab, chromedp.Evaluate[int](`1`)); err != nil {
		t.Fatal(err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errors {
		t.Errorf("%s: page error: %s", l.name, e)
	}
}

func (l *tabLog) statsSeen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stats
}

// TestBrowserConsoleTwoTabs opens the console in two tabs: each sees the
// other's action within a few seconds, and neither page reports a
// JavaScript error, a CSP violation or a failed request, stats samples
// included.
func TestBrowserConsoleTwoTabs(t *testing.T) {
	t.Parallel()
	exe := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserDeadline)
	defer cancel()
	a, url := startConsole(t)
	log1, log2 := &tabLog{name: "tab 1"}, &tabLog{name: "tab 2"}
	b := startBrowser(t, ctx, exe, chromedp.WithListener(log1.listen))
	tab1 := b.ctx
	// A tab lives as long as the context of its first Run: start it here,
	// not under open's timeout.
	tab2, cancel2 := chromedp.NewContext(tab1, chromedp.WithListener(log2.listen))
	defer cancel2()
	if err := chromedp.Do(tab2); err != nil {
		t.Fatalf("open a second tab: %v", err)
	}

	open(t, tab1, url, 2)
	open(t, tab2, url, 2)

	start := time.Now()
	click(t, tab1, `[data-watcher="web"] button[data-action="incr"]`)
	waitView(t, tab2, "web", "the other tab's incr: 3 workers", func(v consoleView) bool {
		return v.Count == "3" && len(v.Pids) == 3
	})
	t.Logf("tab 2 saw tab 1's incr after %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	click(t, tab2, `[data-watcher="web"] button[data-action="decr"]`)
	waitView(t, tab1, "web", "the other tab's decr: 2 workers", func(v consoleView) bool {
		return v.Count == "2" && len(v.Pids) == 2
	})
	t.Logf("tab 1 saw tab 2's decr after %v", time.Since(start).Round(time.Millisecond))

	// Stats samples come every 2 s while a page is open: two in each tab
	// draw the first lines of the sparklines.
	waitFor(t, "2 stats messages in each tab", pageWait, func() bool { return log1.statsSeen() >= 2 && log2.statsSeen() >= 2 })
	log1.check(t, tab1)
	log2.check(t, tab2)
	// Closed before the arbiter stops: a page that loses its arbiter
	// rightly reports the refused reconnections.
	cancel2()
	b.close()
	a.stop(t, syscall.SIGTERM)
}

// procPPid is the parent pid of /proc/PID/stat, 0 if pid is gone.
func procPPid(pid int) int {
	var r procfs.Reader
	st, _ := r.Stat(pid)
	return st.PPid
}

// procArgs is the command line of pid.
func procArgs(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\x00"), "\x00")
}

// A flapping watcher does not read as a plain "stopped" in the console:
// beside its state, it says it will retry, and counts the time down
// (issue 14, item 4).
func TestBrowserFlappingDetail(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b, log := consoleTab(t, dir, `[watcher:crashy]
cmd = WORKER exit 1
flapping.attempts = 3
flapping.window = 5
flapping.retry_in = 30
`, "crashy")
	tab := b.ctx
	const detailJS = `(() => { const d = document.querySelector('[data-watcher="crashy"] [data-role="detail"]');
		return d && !d.hidden ? d.textContent : ''; })()`
	var first string
	waitView(t, tab, "crashy", "the watcher stopped, flapping, with its retry", func(v consoleView) bool {
		d, err := chromedp.Run(tab, chromedp.Evaluate[string](detailJS))
		first = d
		return err == nil && v.State == "stopped" && strings.HasPrefix(d, "flapping, retry 1 of 5 in ")
	})
	// Counted down in the page, without a new state from the server.
	waitView(t, tab, "crashy", "the retry counted down", func(v consoleView) bool {
		d, err := chromedp.Run(tab, chromedp.Evaluate[string](detailJS))
		return err == nil && d != first && strings.HasPrefix(d, "flapping, retry 1 of 5 in ")
	})
	t.Logf("detail: %q", first)
	// Beside it, the deaths it counted and how the last went, and no
	// uptime, as it is not active (issue 16).
	const lifeJS = `(() => { const q = (r) => document.querySelector('[data-watcher="crashy"] [data-role="' + r + '"]');
		return [q('uptime').textContent, q('restarts').textContent, q('last-exit').hidden ? '' : q('last-exit').textContent].join('|'); })()`
	var life string
	waitView(t, tab, "crashy", "the restarts and the last exit", func(v consoleView) bool {
		var err error
		life, err = chromedp.Run(tab, chromedp.Evaluate[string](lifeJS))
		return err == nil && strings.HasPrefix(life, "–|3|last: exit 1 (not expected) ")
	})
	t.Logf("life: %q", life)
	out := ctlOK(t, a.endpoint, "status")
	if !strings.Contains(out, "crashy: stopped (flapping, retry 1 of 5 in ") {
		t.Errorf("circusctl status = %q, want crashy stopped, flapping with its retry", out)
	}
	log.check(t, tab)
	b.close()
	a.stop(t, syscall.SIGTERM)
}
