package arbiter_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// freePort returns a port nobody listens on right now.
var freePort = testproc.FreePort

// Reload applies the difference: unchanged watchers keep their workers,
// changed ones are reloaded gracefully with the new options, one whose
// numprocesses alone changed is resized in place, removed ones stop, new
// ones start, and a socket moved to a new port is served there by new
// workers while the old port closes.
func TestReloadAppliesDifference(t *testing.T) {
	t.Parallel()
	portA, portB := freePort(t), freePort(t)
	ini := func(port int, tail string) string {
		return fmt.Sprintf(`
[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)

[watcher:keep]
cmd = WORKER sleep
`, port) + tail
	}
	r := start(t, ini(portA, "\n[watcher:change]\ncmd = WORKER sleep\n\n[watcher:resize]\ncmd = WORKER sleep\n\n[watcher:gone]\ncmd = WORKER sleep\n"))
	before := map[string][]int{}
	for _, name := range []string{"web", "keep", "change", "resize", "gone"} {
		waitFor(t, name+" running", 10*time.Second, func() bool { return len(r.pids(t, name)) == 1 })
		before[name] = r.pids(t, name)
	}

	cfg := loadINI(t, ini(portB, "\n[watcher:change]\ncmd = WORKER sleep\nnumprocesses = 2\ngraceful_timeout = 5\n\n[watcher:resize]\ncmd = WORKER sleep\nnumprocesses = 3\n\n[watcher:new]\ncmd = WORKER sleep\n"))
	if err := r.Reload(context.Background(), cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := r.pids(t, "keep"); !slices.Equal(got, before["keep"]) {
		t.Errorf("unchanged watcher pids %v -> %v, want untouched", before["keep"], got)
	}
	if got := r.pids(t, "change"); len(got) != 2 || slices.Contains(got, before["change"][0]) {
		t.Errorf("changed watcher pids %v -> %v, want 2 new workers", before["change"], got)
	}
	if got := r.pids(t, "resize"); len(got) != 3 || !slices.Contains(got, before["resize"][0]) {
		t.Errorf("watcher with only numprocesses changed: pids %v -> %v, want its worker kept and 2 more", before["resize"], got)
	}
	if r.Watcher("gone") != nil || !gone(before["gone"][0]) {
		t.Errorf("removed watcher still known or its worker %d still alive", before["gone"][0])
	}
	if got := r.pids(t, "new"); len(got) != 1 {
		t.Errorf("new watcher pids = %v, want 1", got)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	pid, err := get(c, fmt.Sprintf("127.0.0.1:%d", portB))
	if err != nil || !slices.Contains(r.pids(t, "web"), pid) || slices.Contains(before["web"], pid) {
		t.Errorf("new port answered by pid %d (%v); want a restarted web worker, not %v", pid, err, before["web"])
	}
	// Closed by the reload; a child another test of this process is
	// forking may hold a copy between its fork and its exec (spawn.c
	// closes it there), so the refusal is waited for, briefly.
	var oldErr error
	waitFor(t, "the old port refused", 5*time.Second, func() bool {
		_, oldErr = get(c, fmt.Sprintf("127.0.0.1:%d", portA))
		return errors.Is(oldErr, syscall.ECONNREFUSED)
	})
}

// A reload whose socket cannot be bound changes nothing and says why.
func TestReloadRefusedKeepsRunning(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	r := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
`)
	waitFor(t, "the worker", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 1 })
	before := r.pids(t, "web")
	addr := r.Sockets()[0].Addr()
	cfg := loadINI(t, fmt.Sprintf(`
[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
numprocesses = 3
`, busy.Addr().(*net.TCPAddr).Port))
	err = r.Reload(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "test.ini:4: [socket:web] port:") || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Reload = %v, want an error naming test.ini:4 [socket:web] port and the address in use", err)
	}
	if got := r.pids(t, "web"); !slices.Equal(got, before) {
		t.Errorf("pids after a refused reload %v -> %v, want untouched", before, got)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	if pid, err := get(c, addr); err != nil || pid != before[0] {
		t.Errorf("old socket after a refused reload: pid %d, %v; want pid %d serving", pid, err, before[0])
	}
}

// A socket changed at the same address (here its backlog) is bound again
// and its workers restart on the new one: Circus's bug #772 leaves them on
// the old socket and answers an error.
func TestReloadSocketChangedAtSameAddress(t *testing.T) {
	t.Parallel()
	port := freePort(t)
	ini := func(backlog int) string {
		return fmt.Sprintf(`
[socket:web]
host = 127.0.0.1
port = %d
backlog = %d

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)

[watcher:other]
cmd = WORKER sleep
`, port, backlog)
	}
	r := start(t, ini(64))
	waitFor(t, "workers", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 1 && len(r.pids(t, "other")) == 1 })
	web, other := r.pids(t, "web"), r.pids(t, "other")
	if err := r.Reload(context.Background(), loadINI(t, ini(128))); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := r.Sockets()[0].Spec().Backlog; got != 128 {
		t.Errorf("backlog after reload = %d, want 128", got)
	}
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	pid, err := get(c, fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil || slices.Contains(web, pid) || !slices.Contains(r.pids(t, "web"), pid) {
		t.Errorf("port %d answered by pid %d (%v); want a new web worker (old: %v, now: %v)", port, pid, err, web, r.pids(t, "web"))
	}
	if got := r.pids(t, "other"); !slices.Equal(got, other) {
		t.Errorf("watcher without the socket: pids %v -> %v, want untouched", other, got)
	}
}

// With send_hup, Reload sends each worker SIGHUP and keeps it (a server
// that reloads itself); Restart still replaces the workers.
func TestReloadSendHup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := start(t, fmt.Sprintf(`
[watcher:hup]
cmd = /bin/sh
args = -c 'trap "echo hup >> %[1]s/$$" HUP; touch %[1]s/$$; while :; do sleep 0.05; done'
send_hup = true
numprocesses = 2
`, dir))
	waitFor(t, "2 workers", 10*time.Second, func() bool { return len(r.pids(t, "hup")) == 2 })
	before := r.pids(t, "hup")
	for _, pid := range before {
		// The file says the trap is set: a SIGHUP before it would kill.
		waitFor(t, "the trap", 10*time.Second, func() bool { _, err := os.Stat(fmt.Sprintf("%s/%d", dir, pid)); return err == nil })
	}
	w := r.Watcher("hup")
	if err := w.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	for _, pid := range before {
		waitFor(t, fmt.Sprintf("worker %d to get SIGHUP", pid), 10*time.Second, func() bool {
			b, _ := os.ReadFile(fmt.Sprintf("%s/%d", dir, pid))
			return strings.Contains(string(b), "hup")
		})
	}
	if got := r.pids(t, "hup"); !slices.Equal(got, before) {
		t.Errorf("pids after a send_hup reload %v -> %v, want the same", before, got)
	}
	if err := w.Restart(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := r.pids(t, "hup"); len(got) != 2 || slices.Contains(got, before[0]) || slices.Contains(got, before[1]) {
		t.Errorf("pids after Restart %v -> %v, want 2 new workers", before, got)
	}
}

// A reload to workers that cannot be started (a missing program) is
// abandoned after max_retry attempts: the old workers keep running, the
// reload reports the failure, and a later reload of the same file tries
// again rather than taking it for applied.
func TestReloadToBrokenCommandKeepsOldWorkers(t *testing.T) {
	t.Parallel()
	r := start(t, "[watcher:web]\ncmd = WORKER sleep\nnumprocesses = 2\n")
	waitFor(t, "2 workers", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 2 })
	before := r.pids(t, "web")
	broken := loadINI(t, "[watcher:web]\ncmd = /nonexistent/program\nnumprocesses = 2\nmax_retry = 1\n")
	for attempt := 1; attempt <= 2; attempt++ {
		err := r.Reload(context.Background(), broken)
		if err == nil || !strings.Contains(err.Error(), "old workers keep running") {
			t.Fatalf("attempt %d: Reload = %v, want the reload abandoned", attempt, err)
		}
		if got := r.pids(t, "web"); !slices.Equal(got, before) {
			t.Fatalf("attempt %d: pids %v -> %v, want the old workers kept", attempt, before, got)
		}
	}
	st, _, err := r.Watcher("web").Info(context.Background())
	if err != nil || st.String() != "active" {
		t.Errorf("watcher state %v (%v), want active", st, err)
	}
	for _, pid := range before {
		if gone(pid) {
			t.Errorf("old worker %d gone", pid)
		}
	}
}
