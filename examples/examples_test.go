// Package examples_test runs the example configurations end to end: the real
// arbiter and circusctl binaries, the real workers, real sockets. Each test
// copies one examples/*.ini or examples/recipes/*.ini into a temporary
// directory, moves it to free ports, runs `arbiter CONFIG` there and checks
// what a user would check with curl, kill and circusctl.
//
// The examples directory holds no Go package of its own, only the worker
// programs under it (examples/httpworker, examples/wsgi, and
// examples/recipes/node), the configurations and these tests: this file for
// examples/*.ini, recipes_test.go for the recipes, and harness_test.go and
// client_test.go for the arbiter runner and the HTTP clients both use.
package examples_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

func TestHTTP(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	workers := a.waitWorkers(t, "httpworker", 4)

	// Every worker accept()s on the same socket: a burst of fresh
	// connections must reach more than one of them.
	seen := map[int]bool{}
	deadline := time.Now().Add(startDeadline)
	for len(seen) < 2 && time.Now().Before(deadline) {
		for pid := range burst(t, a.url, 64, 8) {
			seen[pid] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("a burst of requests was answered by pids %v, want at least 2 distinct workers", keys(seen))
	}
	for pid := range seen {
		if !workers[pid] {
			t.Errorf("pid %d answered but is not one of the arbiter's workers %v", pid, keys(workers))
		}
	}
	// The example turns the console on, as the README says.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(a.console)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Ringmaster") {
		t.Errorf("console %s: %s, %.200q", a.console, resp.Status, page)
	}
	a.stop(t)
}

func TestHTTPRespawnAfterKill(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	before := a.waitWorkers(t, "httpworker", 4)
	victim := get(t, a.url)

	// A request loop runs throughout: the socket belongs to the arbiter,
	// so while a worker is dead the connection waits in the backlog for
	// another worker; it must never be refused. A request the victim had
	// already accepted may be cut off: that is the cost of SIGKILL, not a
	// refused connection.
	l := startLoad(t, a.url, 4)

	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", victim, err)
	}
	// The arbiter reaps the victim (no zombie left) and starts another.
	testproc.WaitFor(t, fmt.Sprintf("killed worker %d to be reaped", victim), startDeadline, func() bool {
		return !alive(proc{pid: victim})
	})
	var replacement int
	testproc.WaitFor(t, "a replacement worker", startDeadline, func() bool {
		for pid := range a.workers("httpworker") {
			if !before[pid] {
				replacement = pid
				return true
			}
		}
		return false
	})
	testproc.WaitFor(t, fmt.Sprintf("replacement %d to answer", replacement), startDeadline, func() bool {
		return burst(t, a.url, 16, 4)[replacement]
	})
	if n := len(a.workers("httpworker")); n != 4 {
		t.Errorf("after the respawn the arbiter runs %d workers, want 4", n)
	}

	lats, failed := l.stop()
	var refused []error
	for _, err := range failed {
		if errors.Is(err, syscall.ECONNREFUSED) {
			refused = append(refused, err)
		}
	}
	t.Logf("request loop: %d answered, %d cut off by the kill, %d refused", len(lats), len(failed)-len(refused), len(refused))
	if len(refused) > 0 {
		t.Errorf("%d requests were refused while a worker was replaced; the socket must stay open:%s", len(refused), errorsText(refused))
	}
	if len(lats) == 0 {
		t.Errorf("the request loop got no answer at all")
	}
	a.stop(t)
}

// A steady request load sees no failed request while the pool is
// reloaded gracefully (a changed option: new workers first, old ones
// drained), grown and shrunk, each by SIGHUP.
func TestHTTPReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	before := a.waitWorkers(t, "httpworker", 4)

	l := startLoad(t, a.url, 4)
	rewrite := func(re, repl string) {
		t.Helper()
		b, err := os.ReadFile(a.ini)
		if err != nil {
			t.Fatal(err)
		}
		rx := regexp.MustCompile(re)
		if !rx.Match(b) {
			t.Fatalf("%s has no line matching %s", a.ini, re)
		}
		if err := os.WriteFile(a.ini, rx.ReplaceAll(b, []byte(repl)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	served := func(what string) {
		t.Helper()
		n := l.served()
		testproc.WaitFor(t, "requests served after "+what, startDeadline, func() bool { return l.served() > n+20 })
	}

	rewrite(`(?m)^graceful_timeout = \d+$`, "graceful_timeout = 14")
	testproc.WaitFor(t, "4 new workers replacing the old ones", startDeadline, func() bool {
		now := a.workers("httpworker")
		for pid := range now {
			if before[pid] {
				return false
			}
		}
		return len(now) == 4
	})
	served("the reload")
	rewrite(`(?m)^numprocesses = \d+$`, "numprocesses = 6")
	a.waitWorkers(t, "httpworker", 6)
	served("growing to 6")
	rewrite(`(?m)^numprocesses = \d+$`, "numprocesses = 2")
	a.waitWorkers(t, "httpworker", 2)
	served("shrinking to 2")

	lats, failed := l.stop()
	t.Logf("request loop: %d answered, %d failed", len(lats), len(failed))
	if len(failed) != 0 {
		t.Errorf("%d requests failed during reload and resizes, want none:%s", len(failed), errorsText(failed))
	}
	a.stop(t)
}

func TestHTTPDrainOnStop(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	a.waitWorkers(t, "httpworker", 4)

	// A request is inside a worker's handler when SIGTERM reaches the
	// arbiter: the worker must finish it before exiting, well within
	// graceful_timeout, so the client gets the whole answer.
	resp, err := (&http.Client{Timeout: stopDeadline}).Get(a.url + "slow?ms=500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "sleeping") {
		t.Fatalf("GET /slow: first line %q, %v; want \"sleeping ...\"", first, err)
	}
	rest := make(chan string, 1)
	go func() {
		b, err := io.ReadAll(r)
		if err != nil {
			b = append(b, "read error: "+err.Error()...)
		}
		rest <- string(b)
	}()
	a.stop(t)
	if got := <-rest; !strings.HasPrefix(got, "slept") {
		t.Errorf("GET /slow interrupted by the stop: rest of the body %q, want \"slept ...\"", got)
	}
}

func TestWSGI(t *testing.T) {
	t.Parallel()
	testproc.NeedTool(t, "python3", "python3")
	a := startArbiter(t, "wsgi.ini")
	workers := a.waitWorkers(t, "python", 4)
	pid := get(t, a.url)
	if !workers[pid] {
		t.Errorf("pid %d answered but is not one of the arbiter's workers %v", pid, keys(workers))
	}
	a.stop(t)
}

func TestSystemd(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "systemd.ini")
	workers := a.waitWorkers(t, "httpworker", 4)
	// httpworker refuses to serve unless LISTEN_PID is its own pid, so an
	// answer means LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID were right.
	pid := get(t, a.url)
	if !workers[pid] {
		t.Errorf("pid %d answered but is not one of the arbiter's workers %v", pid, keys(workers))
	}
	a.stop(t)
}
