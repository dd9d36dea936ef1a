package main_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ticks returns the numbers of the "tick N" lines of path's contents, in
// order, and whether every line carried pid's prefix.
func ticks(t *testing.T, paths ...string) []int {
	t.Helper()
	var out []int
	re := regexp.MustCompile(`tick (\d+)$`)
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if m := re.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				out = append(out, n)
			}
		}
	}
	return out
}

// contiguous fails the test unless ns counts up by one.
func contiguous(t *testing.T, what string, ns []int) {
	t.Helper()
	for i := 1; i < len(ns); i++ {
		if ns[i] != ns[i-1]+1 {
			t.Fatalf("%s: tick %d follows tick %d: a line was lost or repeated", what, ns[i], ns[i-1])
		}
	}
}

// TestWorkerOutput drives the output of a worker from outside, as an
// operator does: its stdout to a timestamped file, its stderr to the
// arbiter's own output with a prefix; SIGUSR1 after a logrotate-style move;
// circusctl tail, with and without --follow; and set to another file
// without a restart.
func TestWorkerOutput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := filepath.Join(dir, "out.log")
	a := startCtl(t, dir, `
[watcher:ticker]
cmd = WORKER tick 20ms
stdout_stream.class = FileStream
stdout_stream.filename = `+log+`
stdout_stream.time_format = %Y-%m-%d %H:%M:%S
`)
	pid := a.waitPids(t, "ticker", 1)[0]

	waitFor(t, "ticks in the log file", 20*time.Second, func() bool { return len(ticks(t, log)) >= 5 })
	b, _ := os.ReadFile(log)
	first := strings.SplitN(string(b), "\n", 2)[0]
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[` + strconv.Itoa(pid) + `\] \| tick 0$`).MatchString(first) {
		t.Errorf("first line %q, want Circus's prefix with pid %d", first, pid)
	}
	prefix := fmt.Sprintf("ticker[%d]: tock ", pid)
	waitFor(t, "stderr on the arbiter's output, prefixed", 20*time.Second, func() bool { return strings.Contains(a.out.String(), prefix) })

	// logrotate's default: move the file, then signal.
	moved := log + ".1"
	if err := os.Rename(log, moved); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a new log file after SIGUSR1", 20*time.Second, func() bool { return len(ticks(t, log)) >= 3 })
	contiguous(t, "moved file then new file", ticks(t, moved, log))

	// tail: the last lines from memory, stdout's on stdout.
	out, errOut, code := circusctl(t, a.endpoint, "tail", "ticker", "-n", "3", "--stream", "stdout")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || errOut != "" {
		t.Fatalf("tail -n 3: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, l := range lines {
		if !regexp.MustCompile(`^\[` + strconv.Itoa(pid) + `\] tick \d+$`).MatchString(l) {
			t.Errorf("tail line %q", l)
		}
	}
	_, errOut, _ = circusctl(t, a.endpoint, "tail", "ticker", "--lines", "2")
	if !strings.Contains(errOut, "tock") {
		t.Errorf("tail without --stream: stderr %q, want stderr's lines there", errOut)
	}
	if _, errOut, code := circusctl(t, a.endpoint, "tail", "nosuch"); code != 3 || !strings.Contains(errOut, "program nosuch not found") {
		t.Errorf("tail nosuch: exit %d, stderr %q", code, errOut)
	}

	// tail --follow prints lines that come after it started.
	follow := exec.Command(circusctlBin, "--endpoint", a.endpoint, "tail", "ticker", "-f", "-n", "1", "--stream", "stdout")
	pipe, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	waited := false
	t.Cleanup(func() {
		// Should the test stop early, circusctl must not outlive it.
		if !waited {
			follow.Process.Kill()
			follow.Wait()
		}
	})
	sc := bufio.NewScanner(pipe)
	seen := 0
	var last, firstSeen int
	deadline := time.AfterFunc(30*time.Second, func() { follow.Process.Kill() })
	for sc.Scan() && seen < 20 {
		n, err := strconv.Atoi(sc.Text()[strings.LastIndexByte(sc.Text(), ' ')+1:])
		if err != nil {
			t.Fatalf("tail -f printed %q", sc.Text())
		}
		if seen == 0 {
			firstSeen = n
		} else if n != last+1 {
			t.Fatalf("tail -f printed tick %d after %d", n, last)
		}
		last = n
		seen++
	}
	deadline.Stop()
	follow.Process.Signal(syscall.SIGINT)
	err = follow.Wait()
	waited = true
	if err != nil {
		t.Errorf("tail -f after SIGINT: %v", err)
	}
	if seen < 20 {
		t.Fatalf("tail -f printed %d lines (from tick %d) before it was stopped", seen, firstSeen)
	}

	// set moves the output to another file; the worker stays.
	other := filepath.Join(dir, "other.log")
	ctlOK(t, a.endpoint, "set", "ticker", "stdout_stream.filename", other)
	waitFor(t, "ticks in the new file", 20*time.Second, func() bool { return len(ticks(t, other)) >= 3 })
	if ps := a.pids(t, "ticker"); len(ps) != 1 || ps[0] != pid {
		t.Errorf("pids after set stdout_stream.filename: %v, want [%d] (no restart)", ps, pid)
	}
	contiguous(t, "files before and after set", ticks(t, moved, log, other))
	a.stop(t, syscall.SIGTERM)
}
