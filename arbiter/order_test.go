package arbiter_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Watchers start highest priority first and stop in reverse; one with
// autostart = false is left stopped.
func TestPriorityOrderAndAutostart(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:low]
cmd = WORKER sleep
priority = 1

[watcher:high]
cmd = WORKER sleep
priority = 10

[watcher:manual]
cmd = WORKER sleep
autostart = false
priority = 20
`)
	if st, _, _ := r.Watcher("manual").Info(context.Background()); st != arbiter.Stopped {
		t.Errorf("autostart = false watcher is %v, want stopped", st)
	}
	r.stop()
	var starts, stops []string
	for _, ev := range r.events.Of(pubsub.Start) {
		starts = append(starts, ev.Watcher)
	}
	for _, ev := range r.events.Of(pubsub.Stop) {
		stops = append(stops, ev.Watcher)
	}
	// The arbiter's own start and stop (no watcher) come last of each.
	if got, want := fmt.Sprintf("%q", starts), `["high" "low" ""]`; got != want {
		t.Errorf("start order = %s, want %s", got, want)
	}
	if got, want := fmt.Sprintf("%q", stops), `["low" "high" ""]`; got != want {
		t.Errorf("stop order = %s, want %s", got, want)
	}
}

// A program that cannot be executed is retried max_retry times, then the
// watcher stops and says why; the arbiter itself keeps running.
func TestMissingProgramGivesUp(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:ghost]
cmd = /nonexistent/program --flag
max_retry = 2

[watcher:fine]
cmd = WORKER sleep
`)
	waitFor(t, "the ghost watcher to stop", 10*time.Second, func() bool {
		st, _, _ := r.Watcher("ghost").Info(context.Background())
		return st == arbiter.Stopped && strings.Contains(r.log.String(), "giving up")
	})
	if n := strings.Count(r.log.String(), `msg="spawn failed" watcher=ghost`); n != 3 {
		t.Errorf("spawn attempts = %d, want 3 (the first and max_retry = 2 retries)", n)
	}
	if !strings.Contains(r.log.String(), "/nonexistent/program") {
		t.Errorf("the log does not name the missing program:\n%s", r.log.String())
	}
	if len(r.pids(t, "fine")) != 1 {
		t.Errorf("the other watcher is not running")
	}
}

// chroot confines the worker; the static testworker runs inside a bare
// directory.
func TestChroot(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("chroot needs root")
	}
	root := t.TempDir()
	b, err := os.ReadFile(worker)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "testworker"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(root, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	start(t, `
[watcher:jailed]
cmd = /testworker describe /work/state.json
chroot = `+root+`
working_dir = /work
`)
	out := filepath.Join(root, "work", "state.json")
	waitFor(t, "the report inside the chroot", 10*time.Second, func() bool {
		_, err := os.Stat(out)
		return err == nil
	})
	b, _ = os.ReadFile(out)
	if !strings.Contains(string(b), `"cwd":"/work"`) {
		t.Errorf("report = %s, want cwd /work seen from inside the chroot", b)
	}
}

// stop_children reaches a child that left the worker's process group, which
// the group signal cannot.
func TestStopChildren(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:parent]
cmd = WORKER childoutside `+pidfile+`
stop_children = true
graceful_timeout = 5
`)
	pid, child := waitPids(t, pidfile)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	if err := r.Watcher("parent").Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the child outside the group to die", 10*time.Second, func() bool { return gone(child) })
	var killed []int
	for _, ev := range r.events.Of(pubsub.Kill) {
		killed = append(killed, ev.Pid)
	}
	// The child may get one more: when it has not died of SIGTERM by the
	// time its parent is reaped, the sweep of the watcher's cgroup kills it.
	if len(killed) < 2 || fmt.Sprint(killed[:2]) != fmt.Sprint([]int{pid, child}) ||
		len(killed) > 3 || len(killed) == 3 && killed[2] != child {
		t.Errorf("kill events for pids %v, want %v (and perhaps %d again)", killed, []int{pid, child}, child)
	}
}

// A stop then a start, Circus's restart, publishes in Circus's order:
// kill×N, reap×N, stop, spawn×N, start.
func TestRestartEventOrder(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
numprocesses = 2
`)
	w := r.Watcher("web")
	from := len(r.events.All())
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, ev := range r.events.All()[from:] {
		// Orphans of other tests' workers reach every arbiter in the
		// process; only this watcher's events count.
		if ev.Watcher == "web" {
			kinds = append(kinds, ev.Kind.String())
		}
	}
	if got, want := fmt.Sprint(kinds), "[kill kill reap reap stop spawn spawn start]"; got != want {
		t.Errorf("events of a restart = %s, want %s", got, want)
	}
}

// Watchers do not wait on each other: while one takes its graceful_timeout
// to stop, another grows at once (Circus's global lock makes such a
// command fail with "arbiter is already running ...").
func TestSlowStopDoesNotDelayOtherWatchers(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:stubborn]
cmd = WORKER ignoreterm `+pidfile+`
graceful_timeout = 3

[watcher:other]
cmd = WORKER sleep
`)
	waitFor(t, "the stubborn worker", 10*time.Second, func() bool { _, err := os.Stat(pidfile); return err == nil })
	stopDone := make(chan time.Time, 1)
	begin := time.Now()
	go func() {
		_ = r.Watcher("stubborn").Stop(context.Background())
		stopDone <- time.Now()
	}()
	waitFor(t, "the stop to be under way", 10*time.Second, func() bool {
		st, _, _ := r.Watcher("stubborn").Info(context.Background())
		return st == arbiter.Stopping
	})
	if n, err := r.Watcher("other").Incr(context.Background(), 2); err != nil || n != 3 {
		t.Fatalf("Incr during another watcher's stop = %d, %v", n, err)
	}
	incrDone := time.Now()
	stopped := <-stopDone
	if !incrDone.Before(stopped) {
		t.Errorf("Incr finished %s after the start, not before the other watcher's stop (%s)", incrDone.Sub(begin), stopped.Sub(begin))
	}
	t.Logf("incr done after %s; the slow stop after %s", incrDone.Sub(begin).Round(time.Millisecond), stopped.Sub(begin).Round(time.Millisecond))
}
