package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// reloadconfig rewrites the arbiter's file with ini (see writeINI) and
// sends reloadconfig, waiting for it.
func (a *ctlArbiter) reloadconfig(t *testing.T, ini string) (json.RawMessage, error) {
	t.Helper()
	writeINI(t, a.ini, ini)
	return a.try("reloadconfig", map[string]any{"waiting": true})
}

// reloadconfigOK is reloadconfig that must succeed with Circus's bare
// {"status": "ok", "time": ..., "id": ...}.
func (a *ctlArbiter) reloadconfigOK(t *testing.T, ini string) {
	t.Helper()
	rep, err := a.reloadconfig(t, ini)
	if err != nil {
		t.Fatalf("reloadconfig: %v", err)
	}
	wantFrame(t, "reloadconfig", string(rep), `{"status": "ok", "time": <TIME>, "id": "<TEXT>"}`)
}

// subscribe collects every event of the pubsub endpoint from now on.
func subscribe(t *testing.T, endpoint string) *frames {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := zmqpub.Dial(ctx, endpoint)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	f := &frames{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			topic, body, err := c.Recv()
			if err != nil {
				return
			}
			f.add(topic, string(body))
		}
	}()
	t.Cleanup(func() { cancel(); c.Close(); <-done })
	return f
}

func eventPid(body string) int {
	var v struct {
		Pid int `json:"process_pid"`
	}
	_ = json.Unmarshal([]byte(body), &v)
	return v.Pid
}

// An unchanged watcher is not touched; a changed one is reloaded
// gracefully (its new workers first, then the old ones stopped) with its
// new options; the events say so in that order.
func TestReloadConfigChangedWatcher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	events := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	ini := func(bExtra string) string {
		return fmt.Sprintf(`[watcher:a]
cmd = WORKER sleep
numprocesses = 2

[watcher:b]
cmd = WORKER sleep
numprocesses = 2
%s
[watcher:probe]
cmd = WORKER sleep

[circus]
pubsub_endpoint = %s
`, bExtra, events)
	}
	a := startCtl(t, dir, ini(""))
	a.waitPids(t, "probe", 1)
	// The start-up's events (b's spawns, arbiter.start) are not the
	// reload's: the probe's reap must come after them, and on a loaded
	// machine b may still be starting once probe is up.
	waitFor(t, "the arbiter's start-up", 20*time.Second, func() bool {
		return strings.Contains(a.out.String(), `msg="arbiter started"`)
	})
	sub := subscribe(t, events)
	// Slow joiner: once a reap of the probe watcher reached us, every
	// later event will.
	mark := -1
	waitFor(t, "the subscriber to receive events", 20*time.Second, func() bool {
		for i, fr := range sub.list() {
			if fr[0] == "watcher.probe.reap" {
				mark = i + 1
				return true
			}
		}
		a.call(t, "kill", map[string]any{"name": "probe", "waiting": true})
		return false
	})
	pidsA := a.waitPids(t, "a", 2)
	oldB := a.waitPids(t, "b", 2)

	a.reloadconfigOK(t, ini("graceful_timeout = 7\n"))
	if now := a.pids(t, "a"); !sameSet(now, pidsA) || !allAlive(pidsA) {
		t.Errorf("unchanged watcher a was touched: pids %v -> %v", pidsA, now)
	}
	newB := a.waitPids(t, "b", 2)
	if !disjoint(newB, oldB) || !allGone(oldB) {
		t.Errorf("changed watcher b: pids %v -> %v, want new ones and the old ones gone", oldB, newB)
	}
	var opts struct{ Options map[string]any }
	if err := json.Unmarshal(a.call(t, "get", map[string]any{"name": "b", "keys": []string{"graceful_timeout"}}), &opts); err != nil || opts.Options["graceful_timeout"] != 7.0 {
		t.Errorf("b's graceful_timeout after the reload: %v (%v), want 7.0", opts.Options, err)
	}

	var got [][2]string
	waitFor(t, "the reloadconfig event", 10*time.Second, func() bool {
		got = got[:0]
		for _, fr := range sub.list()[mark:] {
			// Commands are audited as events too (the kill and
			// reloadconfig here): not what this test is about.
			if !strings.HasPrefix(fr[0], "watcher.probe.") && !strings.HasSuffix(fr[0], ".command") {
				got = append(got, fr)
			}
		}
		return len(got) > 0 && got[len(got)-1][0] == "arbiter.reloadconfig"
	})
	want := []string{"watcher.b.spawn", "watcher.b.spawn", "watcher.b.kill", "watcher.b.kill",
		"watcher.b.reap", "watcher.b.reap", "watcher.b.reload", "arbiter.reloadconfig"}
	var topics []string
	for _, fr := range got {
		topics = append(topics, fr[0])
	}
	if !slices.Equal(topics, want) {
		t.Fatalf("events of the reloadconfig: %v\nwant %v", topics, want)
	}
	for i, fr := range got[:6] {
		pid, wantPids := eventPid(fr[1]), oldB
		if i < 2 {
			wantPids = newB
		}
		if !slices.Contains(wantPids, pid) {
			t.Errorf("event %s %s: pid %d, want one of %v", fr[0], fr[1], pid, wantPids)
		}
	}
}

func allAlive(pids []int) bool {
	for _, p := range pids {
		if gone(p) {
			return false
		}
	}
	return true
}

// A watcher new in the file is started; one gone from it is stopped and
// removed; the others are not touched.
func TestReloadConfigAddsAndRemovesWatchers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		a1 = "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 2\n\n"
		b1 = "[watcher:b]\ncmd = WORKER sleep\nnumprocesses = 2\n\n"
		c1 = "[watcher:c]\ncmd = WORKER sleep\nnumprocesses = 2\n\n"
	)
	a := startCtl(t, dir, a1+b1)
	pidsA := a.waitPids(t, "a", 2)
	pidsB := a.waitPids(t, "b", 2)

	a.reloadconfigOK(t, a1+b1+c1)
	if got := a.watchers(t); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("list after adding c = %v", got)
	}
	pidsC := a.pids(t, "c")
	if len(pidsC) != 2 || !allAlive(pidsC) || a.status(t, "c") != "active" {
		t.Errorf("new watcher c after reloadconfig --waiting: pids %v, status %s; want 2 live workers, active", pidsC, a.status(t, "c"))
	}

	a.reloadconfigOK(t, a1+c1)
	if got := a.watchers(t); !slices.Equal(got, []string{"a", "c"}) {
		t.Errorf("list after removing b = %v", got)
	}
	if !allGone(pidsB) {
		t.Errorf("removed watcher b's workers %v outlived reloadconfig --waiting", pidsB)
	}
	if _, err := a.try("list", map[string]any{"name": "b"}); err == nil || !strings.Contains(err.Error(), "program b not found") {
		t.Errorf("list b after its removal: %v, want program b not found", err)
	}
	for name, want := range map[string][]int{"a": pidsA, "c": pidsC} {
		if now := a.pids(t, name); !sameSet(now, want) || !allAlive(want) {
			t.Errorf("watcher %s was touched: pids %v -> %v", name, want, now)
		}
	}
}

// A change of numprocesses alone resizes the pool in place: the workers
// that stay are the ones that ran.
func TestReloadConfigNumprocessesOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := func(n int) string {
		return fmt.Sprintf("[watcher:a]\ncmd = WORKER sleep\nnumprocesses = %d\n\n[watcher:b]\ncmd = WORKER sleep\n", n)
	}
	a := startCtl(t, dir, ini(2))
	two := a.waitPids(t, "a", 2)
	pidsB := a.waitPids(t, "b", 1)

	a.reloadconfigOK(t, ini(4))
	four := a.pids(t, "a")
	if len(four) != 4 || !allAlive(four) {
		t.Errorf("numprocesses 2 -> 4: pids %v, want 4 live workers", four)
	}
	for _, p := range two {
		if !slices.Contains(four, p) {
			t.Errorf("numprocesses 2 -> 4 replaced worker %d: %v -> %v", p, two, four)
		}
	}

	a.reloadconfigOK(t, ini(1))
	one := a.pids(t, "a")
	if len(one) != 1 || !slices.Contains(four, one[0]) {
		t.Errorf("numprocesses 4 -> 1: pids %v -> %v, want one of the old ones", four, one)
	}
	for _, p := range four {
		if !slices.Contains(one, p) && !gone(p) {
			t.Errorf("numprocesses 4 -> 1: worker %d is still there after reloadconfig --waiting", p)
		}
	}
	if now := a.pids(t, "b"); !sameSet(now, pidsB) {
		t.Errorf("watcher b was touched: %v -> %v", pidsB, now)
	}
}

// A socket moved to a new port is bound there; the workers that use it
// restart on it; the old port is closed. Circus 0.19 keeps the workers on
// the old socket and answers an error (issue #772); we do not.
func TestReloadConfigMovedSocket(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := func(port int) string {
		return fmt.Sprintf(`[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
numprocesses = 2

[watcher:other]
cmd = WORKER sleep
`, port)
	}
	oldPort, newPort := freePort(t), freePort(t)
	for newPort == oldPort {
		newPort = freePort(t)
	}
	a := startCtl(t, dir, ini(oldPort))
	oldWeb := a.waitPids(t, "web", 2)
	other := a.waitPids(t, "other", 1)
	if pid := httpPid(t, oldPort); !slices.Contains(oldWeb, pid) {
		t.Fatalf("port %d answered from pid %d, not a worker of %v", oldPort, pid, oldWeb)
	}

	a.reloadconfigOK(t, ini(newPort))
	newWeb := a.waitPids(t, "web", 2)
	if !disjoint(newWeb, oldWeb) || !allGone(oldWeb) {
		t.Errorf("web's workers after its socket moved: %v -> %v, want new ones and the old ones gone", oldWeb, newWeb)
	}
	for range 10 {
		if pid := httpPid(t, newPort); !slices.Contains(newWeb, pid) {
			t.Errorf("new port %d answered from pid %d, not a worker of %v", newPort, pid, newWeb)
		}
	}
	if !connRefused(oldPort) {
		t.Errorf("old port %d still accepts connections after the socket moved", oldPort)
	}
	var ls struct {
		Sockets []struct {
			Name string
			Port int
		}
	}
	if err := json.Unmarshal(a.call(t, "listsockets", nil), &ls); err != nil || len(ls.Sockets) != 1 || ls.Sockets[0].Port != newPort {
		t.Errorf("listsockets after the move: %+v (%v), want web on port %d", ls.Sockets, err, newPort)
	}
	if now := a.pids(t, "other"); !sameSet(now, other) {
		t.Errorf("watcher other, which uses no socket, was touched: %v -> %v", other, now)
	}
}

// httpPid GETs / on port from a testworker serve and returns the pid it
// names.
func httpPid(t *testing.T, port int) int {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		t.Fatalf("GET port %d: %v", port, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	var pid int
	if _, serr := fmt.Sscanf(string(b), "pid %d", &pid); err != nil || serr != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET port %d: %s %q (%v)", port, resp.Status, b, err)
	}
	return pid
}

// A change in [circus] alone restarts no watcher, not on this reload and
// not on the next (Circus 0.19 restarts everything on every later reload);
// the options in effect stay those the arbiter started with.
func TestReloadConfigCircusSectionOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := func(delay int) string {
		return fmt.Sprintf("[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 2\n\n[circus]\ncheck_delay = %d\npubsub_endpoint = tcp://127.0.0.1:0\n", delay)
	}
	a := startCtl(t, dir, ini(5))
	before := a.waitPids(t, "a", 2)
	for i := range 2 {
		a.reloadconfigOK(t, ini(3))
		if now := a.pids(t, "a"); !sameSet(now, before) || !allAlive(before) {
			t.Errorf("reload %d of a [circus] change restarted watcher a: %v -> %v", i+1, before, now)
		}
	}
	var g struct{ Options map[string]any }
	if err := json.Unmarshal(a.call(t, "globaloptions", map[string]any{"option": "check_delay"}), &g); err != nil || g.Options["check_delay"] != 5.0 {
		t.Errorf("globaloptions check_delay = %v (%v), want 5.0, the value in effect", g.Options, err)
	}
}

// A file that does not load is an error reply naming file and line, and
// nothing changes, not even what the file got right.
func TestReloadConfigBadFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 2\n"
	a := startCtl(t, dir, good)
	before := a.waitPids(t, "a", 2)
	for _, tt := range []struct{ name, ini, bad string }{
		{"syntax error", good + "this line has no equals sign\n\n[watcher:c]\ncmd = WORKER sleep\n", "this line has no equals sign"},
		{"bad value", "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = many\n\n[watcher:c]\ncmd = WORKER sleep\n", "numprocesses = many"},
		{"bad signal", good + "stop_signal = SIGNOPE\n\n[watcher:c]\ncmd = WORKER sleep\n", "stop_signal = SIGNOPE"},
	} {
		rep, err := a.reloadconfig(t, tt.ini)
		b, _ := os.ReadFile(a.ini)
		line := slices.Index(strings.Split(string(b), "\n"), tt.bad) + 1
		var ce *control.CallError
		if !errors.As(err, &ce) || ce.Errno != control.MessageError || !strings.Contains(ce.Reason, fmt.Sprintf("circus.ini:%d:", line)) {
			t.Errorf("%s: reloadconfig replied %s (%v), want errno 3 naming circus.ini:%d", tt.name, rep, err, line)
		}
		if got := a.watchers(t); !slices.Equal(got, []string{"a"}) {
			t.Errorf("%s: the refused file changed the watchers to %v", tt.name, got)
		}
		if now := a.pids(t, "a"); !sameSet(now, before) || !allAlive(before) {
			t.Errorf("%s: the refused file touched watcher a: %v -> %v", tt.name, before, now)
		}
	}
	// The arbiter still reloads a good file.
	a.reloadconfigOK(t, good+"\n[watcher:c]\ncmd = WORKER sleep\n")
	a.waitPids(t, "c", 1)
}

// A watcher added at runtime with add survives a reloadconfig of a file
// that does not name it (Circus 0.19 removes it).
func TestReloadConfigKeepsAddedWatcher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	base := "[watcher:a]\ncmd = WORKER sleep\n"
	a := startCtl(t, dir, base)
	a.waitPids(t, "a", 1)
	rep := a.call(t, "add", map[string]any{"name": "extra", "cmd": worker + " sleep", "start": true, "waiting": true})
	var added struct{ Started []int }
	if err := json.Unmarshal(rep, &added); err != nil || len(added.Started) != 1 {
		t.Fatalf("add extra --start --waiting replied %s (%v), want one started pid", rep, err)
	}
	extra := a.waitPids(t, "extra", 1)
	if !sameSet(extra, added.Started) {
		t.Errorf("add replied started %v, list extra says %v", added.Started, extra)
	}

	a.reloadconfigOK(t, base+"\n[watcher:b]\ncmd = WORKER sleep\n")
	a.waitPids(t, "b", 1)
	if got := a.watchers(t); !slices.Equal(got, []string{"a", "b", "extra"}) {
		t.Errorf("list after reloadconfig = %v, want the added watcher kept", got)
	}
	if now := a.pids(t, "extra"); !sameSet(now, extra) || !allAlive(extra) || a.status(t, "extra") != "active" {
		t.Errorf("the added watcher was touched by reloadconfig: %v -> %v", extra, now)
	}
}

// SIGHUP does what reloadconfig does: the unchanged watcher is left
// alone, the changed one reloaded, the removed one stopped.
func TestSIGHUPReloadsLikeReloadconfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const (
		a1 = "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 2\n\n"
		b1 = "[watcher:b]\ncmd = WORKER sleep\nnumprocesses = 2\n\n"
		b2 = "[watcher:b]\ncmd = WORKER sleep\nnumprocesses = 2\ngraceful_timeout = 7\n\n"
		d1 = "[watcher:d]\ncmd = WORKER sleep\n\n"
	)
	a := startCtl(t, dir, a1+b1+d1)
	pidsA := a.waitPids(t, "a", 2)
	oldB := a.waitPids(t, "b", 2)
	pidsD := a.waitPids(t, "d", 1)

	writeINI(t, a.ini, a1+b2)
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload", 20*time.Second, func() bool {
		ws := a.watchers(t)
		ps := a.pids(t, "b")
		return slices.Equal(ws, []string{"a", "b"}) && len(ps) == 2 && disjoint(ps, oldB) && allGone(oldB) && allGone(pidsD)
	})
	if now := a.pids(t, "a"); !sameSet(now, pidsA) || !allAlive(pidsA) {
		t.Errorf("SIGHUP touched the unchanged watcher a: %v -> %v", pidsA, now)
	}
	var opts struct{ Options map[string]any }
	if err := json.Unmarshal(a.call(t, "get", map[string]any{"name": "b", "keys": []string{"graceful_timeout"}}), &opts); err != nil || opts.Options["graceful_timeout"] != 7.0 {
		t.Errorf("b's graceful_timeout after SIGHUP: %v (%v), want 7.0", opts.Options, err)
	}
}
