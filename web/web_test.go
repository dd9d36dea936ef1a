package web_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/web"
)

// worker is the testworker binary: an in-process arbiter reaps every child
// of the test binary, so nothing is exec'd by the tests themselves.
var worker string

func TestMain(m *testing.M) { os.Exit(arbtest.Main(m, &worker)) }

// env is an arbiter with its Bus, command table and console, served on a
// loopback port until the test ends.
type env struct {
	t   *testing.T
	a   *arbiter.Arbiter
	bus *pubsub.Bus
	srv *web.Server
	url string // http://127.0.0.1:PORT
	// stop ends the arbiter's Run and waits for it.
	stop func()
}

func start(t *testing.T, ini string, opts web.Options) *env {
	t.Helper()
	cfg := arbtest.LoadINI(t, worker, ini)
	logs := &arbtest.LogBuf{T: t}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := pubsub.NewBus()
	a, err := arbiter.New(cfg, arbiter.Options{Logger: log, Publisher: bus})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	tab, err := commands.New(a, commands.Options{Logger: log, Quit: cancel, Stopped: stopped})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	var runErr error
	go func() {
		runErr = a.Run(ctx)
		close(stopped)
	}()
	opts.Arbiter, opts.Bus, opts.Commands, opts.Logger = a, bus, tab, log
	srv, err := web.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		cancel()
		<-stopped
		tab.Close()
		if runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
	})
	<-a.Started()
	stop := func() {
		cancel()
		<-stopped
	}
	return &env{t: t, a: a, bus: bus, srv: srv, url: "http://" + ln.Addr().String(), stop: stop}
}

// page is one WebSocket client, reading as the page does.
type page struct {
	t    *testing.T
	conn *websocket.Conn
	last uint64 // the seq of the last stream message read
	id   int
	// backlog holds messages read but not yet matched by until, so that
	// tests need not know in which order a reply and the events it caused
	// arrive.
	backlog []msg
}

// msg is a message from the console, with the members tests look at.
type msg struct {
	Type     string          `json:"type"`
	Seq      uint64          `json:"seq"`
	Stream   string          `json:"stream"`
	Watchers json.RawMessage `json:"watchers"` // a list in a snapshot, an object in stats
	Events   []event         `json:"events"`
	Watcher  *watcher        `json:"watcher"`
	Event    *event          `json:"event"`
	Name     string          `json:"name"`
	ID       json.RawMessage `json:"id"`
	Since    uint64          `json:"since"`
	Upto     uint64          `json:"upto"`
	Reply    map[string]any  `json:"reply"`
	Workers  map[string]any  `json:"workers"`
	raw      string
}

type watcher struct {
	Name         string `json:"name"`
	State        string `json:"state"`
	NumProcesses int    `json:"numprocesses"`
	Workers      []struct {
		Pid int `json:"pid"`
		Wid int `json:"wid"`
	} `json:"workers"`
}

type event struct {
	Seq      uint64 `json:"seq"`
	Kind     string `json:"kind"`
	Watcher  string `json:"watcher"`
	Pid      int    `json:"pid"`
	ExitCode *int   `json:"exit_code"`
}

func (e *env) dial(query string, hdr http.Header) *page {
	e.t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "http", "ws", 1)+"/ws"+query, hdr)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial: %v (status %d)", err, status)
	}
	p := &page{t: e.t, conn: c}
	e.t.Cleanup(func() { c.Close() })
	return p
}

// next returns the next message, checking that stream messages are
// numbered without gaps.
func (p *page) next() msg {
	p.t.Helper()
	_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, b, err := p.conn.ReadMessage()
	if err != nil {
		p.t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		p.t.Fatalf("not JSON: %v: %s", err, b)
	}
	m.raw = string(b)
	switch {
	case m.Type == "reply", m.Type == "resumed":
	case m.Type == "snapshot":
		p.last = m.Seq
	case m.Seq != p.last+1:
		p.t.Fatalf("message seq %d after %d: %s", m.Seq, p.last, b)
	default:
		p.last = m.Seq
	}
	return m
}

// until reads until f accepts a message, which it returns.
func (p *page) until(what string, f func(msg) bool) msg {
	p.t.Helper()
	for i, m := range p.backlog {
		if f(m) {
			p.backlog = append(p.backlog[:i], p.backlog[i+1:]...)
			return m
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		m := p.next()
		if f(m) {
			return m
		}
		p.backlog = append(p.backlog, m)
	}
	p.t.Fatalf("no message %s within 20s", what)
	return msg{}
}

func (p *page) send(cmd, props string) int {
	p.t.Helper()
	p.id++
	if err := p.conn.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"id": %d, "command": %q, "properties": %s}`, p.id, cmd, props)); err != nil {
		p.t.Fatal(err)
	}
	return p.id
}

func (p *page) replyTo(id int) map[string]any {
	p.t.Helper()
	m := p.until(fmt.Sprintf("reply %d", id), func(m msg) bool { return m.Type == "reply" && string(m.ID) == fmt.Sprint(id) })
	return m.Reply
}

const twoSleepers = `
[watcher:sleepers]
cmd = WORKER sleep
numprocesses = 2
graceful_timeout = 5
`

func TestSnapshotThenLive(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	p := e.dial("", nil)
	snap := p.next()
	if snap.Type != "snapshot" || snap.Stream == "" {
		t.Fatalf("first message is not a snapshot: %s", snap.raw)
	}
	// The snapshot may come before the first read of the watchers, or
	// hold a read from before the start, which the start's events make
	// the hub read again (seen once in 25 runs).
	var w []watcher
	if err := json.Unmarshal(snap.Watchers, &w); err != nil {
		t.Fatal(err)
	}
	if len(w) == 0 || w[0].State == "stopped" || w[0].State == "starting" {
		m := p.until("watcher", func(m msg) bool { return m.Type == "watcher" && m.Watcher.State == "active" })
		w = []watcher{*m.Watcher}
	}
	if w[0].Name != "sleepers" || w[0].State != "active" || len(w[0].Workers) != 2 {
		t.Fatalf("watcher = %+v, want sleepers active with 2 workers", w[0])
	}

	r := p.replyTo(p.send("incr", `{"name": "sleepers", "waiting": true}`))
	if r["status"] != "ok" || r["numprocesses"] != 3.0 {
		t.Fatalf("incr reply = %v", r)
	}
	p.until("spawn event", func(m msg) bool { return m.Type == "event" && m.Event.Kind == "spawn" })
	p.until("watcher with 3 workers", func(m msg) bool {
		return m.Type == "watcher" && len(m.Watcher.Workers) == 3 && m.Watcher.NumProcesses == 3
	})
	p.until("stats sample", func(m msg) bool { return m.Type == "stats" && len(m.Workers) == 3 })
}

// TestEventOrder: events reach the page in the Bus's order, each once, with
// exit codes on reaps, and a second page sees the first page's action.
func TestEventOrder(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	p1, p2 := e.dial("", nil), e.dial("", nil)
	p1.next()
	p2.next()
	p1.replyTo(p1.send("kill", `{"name": "sleepers", "pid": "0", "waiting": true}`))
	var kinds []string
	var last uint64
	p2.until("4 reaps and spawns", func(m msg) bool {
		if m.Type != "event" {
			return false
		}
		if m.Event.Seq <= last {
			t.Fatalf("event seq %d after %d", m.Event.Seq, last)
		}
		last = m.Event.Seq
		if m.Event.Kind == "reap" && m.Event.ExitCode == nil {
			t.Fatalf("reap without exit_code: %s", m.raw)
		}
		kinds = append(kinds, m.Event.Kind)
		n := 0
		for _, k := range kinds {
			if k == "reap" || k == "spawn" {
				n++
			}
		}
		return n == 4
	})
	t.Logf("second page saw %v", kinds)
}

// TestResume: a page that reconnects with its stream and last seq gets
// exactly the messages it missed; a stranger stream or a seq too old gets a
// snapshot.
func TestResume(t *testing.T) {
	e := start(t, twoSleepers, web.Options{Queue: 64})
	p := e.dial("", nil)
	snap := p.next()
	p.replyTo(p.send("incr", `{"name": "sleepers"}`))
	p.until("watcher with 3", func(m msg) bool { return m.Type == "watcher" && len(m.Watcher.Workers) == 3 })
	seen := p.last
	p.conn.Close()

	// Events while away: published straight on the Bus.
	for i := range 5 {
		e.bus.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "away", Reason: fmt.Sprint(i)})
	}
	q := e.dial(fmt.Sprintf("?stream=%s&since=%d", snap.Stream, seen), nil)
	q.last = seen
	if m := q.next(); m.Type != "resumed" || m.Since != seen || m.Upto < seen {
		t.Fatalf("resuming from %d: first message %s, want resumed", seen, m.raw)
	}
	// next fails on a gap: the first message must be seen+1, no snapshot.
	for i := range 5 {
		m := q.until("missed flapping event", func(m msg) bool {
			if m.Type == "snapshot" {
				t.Fatalf("resuming from %d gave a snapshot", seen)
			}
			return m.Type == "event" && m.Event.Kind == "flapping"
		})
		if m.Event.Watcher != "away" || m.raw == "" || !strings.Contains(m.raw, fmt.Sprintf(`"reason":"%d"`, i)) {
			t.Fatalf("resumed event %d = %s", i, m.raw)
		}
	}

	o := e.dial(fmt.Sprintf("?stream=other&since=%d", seen), nil)
	if m := o.next(); m.Type != "snapshot" {
		t.Fatalf("another stream's seq: got %s, want a snapshot", m.raw)
	}
	// More missed than half the queue: a snapshot instead. o's seeing them
	// all means the hub has numbered them.
	for range 40 {
		e.bus.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "away", Reason: "more"})
	}
	for range 40 {
		o.until("40 events", func(m msg) bool { return m.Type == "event" && strings.Contains(m.raw, `"reason":"more"`) })
	}
	if m := e.dial(fmt.Sprintf("?stream=%s&since=%d", snap.Stream, seen), nil).next(); m.Type != "snapshot" {
		t.Fatalf("40 missed with a queue of 64: got %s, want a snapshot", m.raw[:min(len(m.raw), 200)])
	}
	// Nothing missed: resumed says so, and live messages follow.
	cur := o.last
	o.conn.Close()
	r := e.dial(fmt.Sprintf("?stream=%s&since=%d", snap.Stream, cur), nil)
	r.last = cur
	if m := r.next(); m.Type != "resumed" || m.Since != cur || m.Upto < cur {
		t.Fatalf("resuming when current (%d): %s", cur, m.raw)
	}
	e.bus.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "away", Reason: "live"})
	r.until("live event", func(m msg) bool { return m.Type == "event" && strings.Contains(m.raw, `"reason":"live"`) })
}

// TestSlowPage: a page that stops reading is dropped with close code 4008
// once its queue is full, while another page gets every message, in order.
func TestSlowPage(t *testing.T) {
	const queue = 64
	e := start(t, twoSleepers, web.Options{Queue: queue})
	fast, slow := e.dial("", nil), e.dial("", nil)
	snap := fast.next()
	// Big events fill the slow page's socket buffers, then its queue.
	reason := strings.Repeat("x", 64<<10)
	const n = 400
	done := make(chan struct{})
	var got atomic.Int64
	var readErr error
	go func() {
		defer close(done)
		for got.Load() < n {
			_ = fast.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
			_, b, err := fast.conn.ReadMessage()
			if err != nil {
				readErr = err
				return
			}
			if strings.Contains(string(b), `"kind":"flapping"`) {
				got.Add(1)
			}
		}
	}()
	for i := range n {
		e.bus.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "nosuch", Reason: fmt.Sprint(i, reason)})
		// Keep the fast page well inside its queue (it is the slow one
		// under test), however busy the machine.
		for got.Load() < int64(i-queue/4) {
			select {
			case <-done:
				t.Fatalf("the fast page stopped after %d of %d events: %v", got.Load(), n, readErr)
			case <-time.After(time.Millisecond):
			}
		}
	}
	<-done
	if got.Load() != n {
		t.Fatalf("the fast page got %d of %d events", got.Load(), n)
	}
	// The close frame (4008) reaches a page only if its socket had room
	// for it; either way the connection has ended, not timed out.
	_ = slow.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := slow.conn.ReadMessage()
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("the slow page was not dropped: %v", err)
		}
		t.Logf("the slow page ended with %v", err)
		break
	}
	// It comes back where it was, or to a snapshot.
	p := e.dial(fmt.Sprintf("?stream=%s&since=%d", snap.Stream, 1), nil)
	if m := p.next(); m.Type != "snapshot" {
		t.Fatalf("a page far behind resumed with %s", m.raw[:min(200, len(m.raw))])
	}
}

func TestBadCommands(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	p := e.dial("", nil)
	p.next()
	for _, bad := range []string{`not json`, `[1]`, `{"id": 5}`, `{"id": 6, "command": "nosuch"}`, `{"id": 7, "command": "incr", "properties": {"name": "nosuch"}}`} {
		if err := p.conn.WriteMessage(websocket.TextMessage, []byte(bad)); err != nil {
			t.Fatal(err)
		}
		m := p.until("reply", func(m msg) bool { return m.Type == "reply" })
		if m.Reply["status"] != "error" || m.Reply["reason"] == "" {
			t.Errorf("%s: reply %s, want an error with a reason", bad, m.raw)
		}
	}
	// Still serving.
	if r := p.replyTo(p.send("list", `{}`)); r["status"] != "ok" {
		t.Fatalf("list after bad input: %v", r)
	}
}

func TestRemovedWatcher(t *testing.T) {
	e := start(t, twoSleepers+`
[watcher:other]
cmd = WORKER sleep
`, web.Options{})
	p := e.dial("", nil)
	p.next()
	p.replyTo(p.send("rm", `{"name": "other", "waiting": true}`))
	p.until("removed", func(m msg) bool { return m.Type == "removed" && m.Name == "other" })
	if m := e.dial("", nil).next(); strings.Contains(m.raw, `"name":"other"`) {
		t.Fatalf("the snapshot still has the removed watcher: %s", m.raw)
	}
}

func TestAuth(t *testing.T) {
	e := start(t, twoSleepers, web.Options{Auth: "ops:s3cret"})
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {"ops", "wrong", 401}, {"ops", "s3cret", 200}} {
		req, _ := http.NewRequest("GET", e.url+"/", nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("GET / as %q:%q = %d, want %d", c.user, c.pass, resp.StatusCode, c.want)
		}
	}
	_, resp, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "http", "ws", 1)+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("WebSocket without credentials: err %v, resp %v; want 401", err, resp)
	}
	hdr := http.Header{"Authorization": {"Basic " + base64.StdEncoding.EncodeToString([]byte("ops:s3cret"))}}
	if m := e.dial("", hdr).next(); m.Type != "snapshot" {
		t.Fatalf("with credentials: %s", m.raw)
	}
}

// TestOriginAndHost: a page from another origin cannot open the WebSocket
// (so it cannot act: CSRF), and without authentication a request must name
// this machine (so DNS rebinding cannot reach it).
func TestOriginAndHost(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	host := strings.TrimPrefix(e.url, "http://")
	_, resp, err := websocket.DefaultDialer.Dial("ws://"+host+"/ws", http.Header{"Origin": {"http://evil.example"}})
	if err == nil || resp == nil || resp.StatusCode != 403 {
		t.Fatalf("foreign Origin: err %v, resp %v; want 403", err, resp)
	}
	if m := e.dial("", http.Header{"Origin": {e.url}}).next(); m.Type != "snapshot" {
		t.Fatalf("same Origin: %s", m.raw)
	}
	for _, c := range []struct {
		method, host, path string
		want               int
	}{
		{"GET", "evil.example", "/", 421},
		{"GET", "localhost:1", "/", 200},
		{"GET", "[::1]:1", "/assets/app.js", 200},
		{"POST", "localhost", "/", 405},
		{"GET", "localhost", "/nosuch", 404},
	} {
		req, _ := http.NewRequest(c.method, e.url+c.path, nil)
		req.Host = c.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s %s with Host %s = %d, want %d", c.method, c.path, c.host, resp.StatusCode, c.want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("CSP = %q", csp)
		}
	}
}

func TestServeRefusesWideWithoutAuth(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := e.srv.Serve(ln); err == nil || !strings.Contains(err.Error(), "without authentication") {
		t.Fatalf("Serve on %s = %v, want a refusal", ln.Addr(), err)
	}
}

// TestManyPages: pages that come and go while events flow leave nothing
// behind (goleak checks at the end) and each sees a consistent stream.
func TestManyPages(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			for range 5 {
				c, _, err := websocket.DefaultDialer.Dial(strings.Replace(e.url, "http", "ws", 1)+"/ws", nil)
				if err != nil {
					t.Error(err)
					return
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				if _, _, err := c.ReadMessage(); err != nil {
					t.Error(err)
				}
				c.Close()
			}
			e.bus.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "nosuch", Reason: fmt.Sprint(i)})
		})
	}
	wg.Wait()
}

// TestShutdownReachesPages: as the arbiter command does, the console is
// closed after Run returns; the pages still get the last events (the
// workers' reaps, the arbiter's stop) before a going-away close.
func TestShutdownReachesPages(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	p := e.dial("", nil)
	p.next()
	e.stop()
	closed := make(chan error, 1)
	go func() { closed <- e.srv.Close() }()
	var kinds []string
	for {
		_ = p.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := p.conn.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
				t.Fatalf("the page ended with %v, want going away", err)
			}
			break
		}
		var m msg
		if json.Unmarshal(b, &m) == nil && m.Type == "event" {
			kinds = append(kinds, m.Event.Watcher+"."+m.Event.Kind)
		}
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kinds, "sleepers.reap") || !slices.Contains(kinds, ".stop") {
		t.Fatalf("events before the close: %v, want the reaps and the arbiter's stop", kinds)
	}
}
