package main_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The core's promises under faults (issue 14), each shown with the real
// arbiter, real workers and the real circusctl: it can always be stopped,
// an operator's stop is obeyed, a fault that passes never leaves a pool
// down for good, and a start that fails does not answer "ok".

// neverReady is a watcher whose workers never say they are ready: a start
// of it waits ready_timeout (a minute) for its first attempt.
const neverReady = `
[watcher:never]
cmd = WORKER sleep
ready = notify
ready_timeout = 60
graceful_timeout = 1
`

// bgCircusctl runs circusctl in the background; the channel gets its exit
// code and output once it ends. It is killed when the test ends.
func bgCircusctl(t *testing.T, endpoint string, args ...string) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, circusctlBin, append([]string{"--endpoint", endpoint, "--timeout", "120"}, args...)...)
	done := make(chan string, 1)
	go func() {
		out, err := cmd.CombinedOutput()
		done <- strings.TrimSpace(string(out)) + " [" + exitText(err) + "]"
	}()
	t.Cleanup(cancel)
	return done
}

func exitText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// SIGTERM overtakes an arbiter-wide operation that waits: a restart that
// waits for a watcher that never becomes ready no longer holds the
// shutdown (item 1: the arbiter was still running 30 s after SIGTERM, and
// its orchestrator's SIGKILL would have killed every worker without a
// drain). The arbiter exits within graceful_timeout and a margin.
func TestSIGTERMOvertakesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, "[watcher:good]\ncmd = WORKER sleep\nnumprocesses = 2\ngraceful_timeout = 1\n"+neverReady)
	before := a.waitPids(t, "good", 2)
	restart := bgCircusctl(t, a.endpoint, "restart", "--waiting")
	// The restart has stopped both and started good again: it now waits
	// for never's first attempt.
	// Not disjoint from before: a new worker may get an old one's pid
	// (arbiter tests beside this one force pid reuse through
	// ns_last_pid; seen).
	waitFor(t, "the restart to start good again", 20*time.Second, func() bool {
		ps := a.pids(t, "good")
		return len(ps) == 2 && !sameSet(ps, before)
	})
	sent := time.Now()
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-a.done:
		if err != nil {
			t.Errorf("arbiter exited with %v, want 0", err)
		}
		t.Logf("exited %v after SIGTERM", time.Since(sent).Round(time.Millisecond))
		a.done <- err
	case <-time.After(15 * time.Second):
		t.Fatal("arbiter still running 15s after SIGTERM during a restart")
	}
	select {
	case out := <-restart:
		if strings.HasSuffix(out, "[exit 0]") {
			t.Errorf("circusctl restart = %q, want a failure: the restart did not finish", out)
		}
	case <-time.After(10 * time.Second):
		t.Error("circusctl restart got no answer after the arbiter exited")
	}
}

// stop overtakes a start queued or running on the same watcher, which
// answers that it was stopped (item 2: `start bad; stop bad` left the
// watcher starting for minutes, the stop queued behind the start).
func TestStopOvertakesStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, strings.Replace(neverReady, "[watcher:never]\n", "[watcher:never]\nautostart = false\n", 1))
	start := bgCircusctl(t, a.endpoint, "start", "never", "--waiting")
	waitFor(t, "never starting", 20*time.Second, func() bool { return a.status(t, "never") == "starting" && len(a.pids(t, "never")) == 1 })
	pid := a.pids(t, "never")[0]
	out := ctlOK(t, a.endpoint, "stop", "never", "--waiting")
	if strings.TrimSpace(out) != "ok" {
		t.Errorf("circusctl stop never = %q, want ok", out)
	}
	if st := a.status(t, "never"); st != "stopped" {
		t.Errorf("status after stop = %s, want stopped", st)
	}
	if !gone(pid) {
		t.Errorf("worker %d alive after the stop answered", pid)
	}
	select {
	case out := <-start:
		if !strings.Contains(out, "stop") || strings.HasSuffix(out, "[exit 0]") {
			t.Errorf("circusctl start = %q, want a failure saying it was stopped", out)
		}
	case <-time.After(20 * time.Second):
		t.Error("the overtaken start got no answer")
	}
}

// A start that fails answers so: restart (of all) and reloadconfig used to
// answer "ok" whatever their starts did (item 8).
func TestFailedStartsAnswerTheFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, "[watcher:good]\ncmd = WORKER sleep\n\n[watcher:bad]\ncmd = "+dir+"/no-such-program\nmax_retry = 1\n")
	a.waitPids(t, "good", 1)
	out, errOut, code := circusctl(t, a.endpoint, "restart", "--waiting")
	if code == 0 || !strings.Contains(out+errOut, "bad") || !strings.Contains(out+errOut, "no-such-program") {
		t.Errorf("circusctl restart: exit %d, %q %q; want a failure naming bad and its program", code, out, errOut)
	}
	// A watcher added by the file that cannot start fails the reload's
	// answer too, while the rest is applied.
	cfg, err := os.ReadFile(a.ini)
	if err != nil {
		t.Fatal(err)
	}
	added := strings.Replace(string(cfg), "[watcher:good]", "[watcher:worse]\ncmd = "+dir+"/missing-too\nmax_retry = 0\n\n[watcher:good]", 1)
	if err := os.WriteFile(a.ini, []byte(added), 0o644); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = circusctl(t, a.endpoint, "reloadconfig", "--waiting")
	if code == 0 || !strings.Contains(out+errOut, "missing-too") {
		t.Errorf("circusctl reloadconfig: exit %d, %q %q; want a failure naming the new watcher's program", code, out, errOut)
	}
}

// The arbiter out of file descriptors (its RLIMIT_NOFILE lowered at run
// time, as a leak elsewhere in it or a small limit would) cannot spawn:
// it backs off and retries for as long as that lasts, and never gives up
// on the pool, whatever max_retry says; circusctl status tells what is
// happening. Once fds are to be had again, the pool is whole by itself
// (item 3: after max_retry failures the watcher stopped for good).
func TestEMFILEPassesAndThePoolComesBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, "[watcher:web]\ncmd = WORKER sleep\nnumprocesses = 2\nmax_retry = 1\n")
	pids := a.waitPids(t, "web", 2)
	apid := a.cmd.Process.Pid
	var old unix.Rlimit
	if err := unix.Prlimit(apid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		t.Fatal(err)
	}
	fds, err := os.ReadDir("/proc/" + strconv.Itoa(apid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	// Not one fd more: the spawn's pipes fail with EMFILE.
	low := unix.Rlimit{Cur: uint64(len(fds)), Max: old.Max}
	if err := unix.Prlimit(apid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		t.Fatal(err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(apid, unix.RLIMIT_NOFILE, &old, nil); err != nil {
				t.Error(err)
			}
		}
	}
	t.Cleanup(restore)
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	// More failed attempts than max_retry allows, logged as passing.
	waitFor(t, "three failed spawns with EMFILE", 30*time.Second, func() bool {
		return strings.Count(a.out.String(), "spawn failed for a passing reason") >= 3
	})
	if strings.Contains(a.out.String(), "giving up") {
		t.Fatalf("the arbiter gave up on the pool:\n%s", a.out.String())
	}
	restore()
	out := ctlOK(t, a.endpoint, "status")
	if !strings.Contains(out, "web: active") && !strings.Contains(out, "backoff: EMFILE") {
		t.Errorf("circusctl status = %q, want web active or in backoff with EMFILE", out)
	}
	a.waitPids(t, "web", 2)
}
