package main_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A critical watcher that gives up ends the arbiter binary with exit code
// 3, one log line and one message on stderr naming it, after every other
// worker was stopped gracefully: each got SIGTERM and wrote so before it
// exited (issue 16).
func TestCriticalWatcherExit3(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf(`[watcher:web]
cmd = WORKER termnote %s/web-$(circus.wid)
numprocesses = 2
ready = notify
priority = 1

[watcher:other]
cmd = WORKER termnote %s/other-$(circus.wid)
ready = notify

[watcher:crashy]
cmd = WORKER exit 3
critical = true
flapping.attempts = 2
flapping.window = 30
flapping.retry_in = 0.2
flapping.max_retry = 1
priority = -1
`, dir, dir))
	p := startArbiter(t, ini)
	var err error
	select {
	case err = <-p.done:
		p.done <- err
	case <-time.After(60 * time.Second):
		t.Fatalf("arbiter still running 60s after its critical watcher started; output:\n%s", p.out.String())
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("arbiter exited with %v, want exit status 3; output:\n%s", err, p.out.String())
	}
	out := p.out.String()
	const msg = "arbiter: critical watcher crashy gave up: flapping: 2 deaths within 30s; gave up after 1 retries\n"
	if !strings.Contains(out, msg) {
		t.Errorf("output lacks %q:\n%s", msg, out)
	}
	if n := strings.Count(out, `msg="arbiter stopping: a critical watcher gave up" watcher=crashy`); n != 1 {
		t.Errorf("%d log lines saying the critical watcher stopped the arbiter, want 1:\n%s", n, out)
	}
	for _, f := range []string{"web-1", "web-2", "other-1"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.HasSuffix(string(b), " TERM") {
			t.Errorf("%s = %q (%v): want the worker to have recorded its SIGTERM", f, b, err)
			continue
		}
		var pid int
		fmt.Sscan(string(b), &pid)
		if !gone(pid) {
			t.Errorf("worker %d (%s) outlived the arbiter", pid, f)
		}
	}
}
