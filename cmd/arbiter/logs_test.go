package main_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// logsLine is a line circusctl logs prints: time, watcher (or arbiter),
// pid, stream, text.
var logsLine = regexp.MustCompile(`^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) (\S+)\[(\d+)\] (stdout|stderr|log): (.*)$`)

const logsINI = `
[watcher:alpha]
cmd = WORKER tick 20ms
stdout_stream.class = QueueStream
stderr_stream.class = QueueStream

[watcher:beta]
cmd = WORKER tick 20ms
stdout_stream.class = QueueStream
stderr_stream.class = QueueStream

[watcher:crashy]
cmd = /bin/sh -c "echo starting; echo boom: cannot open db >&2; exit 1"
flapping.attempts = 3
flapping.window = 30
flapping.retry_in = 600
`

// follower is a circusctl logs -f run, its stdout read only when the
// test reads it.
type follower struct {
	cmd *exec.Cmd
	out *bufio.Reader
}

func startFollower(t *testing.T, endpoint string, args ...string) *follower {
	t.Helper()
	cmd := exec.Command(circusctlBin, append([]string{"--endpoint", endpoint, "logs", "-f"}, args...)...)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &follower{cmd: cmd, out: bufio.NewReader(pipe)}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { io.Copy(io.Discard, f.out); done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("circusctl logs -f after SIGINT: %v; stderr: %s", err, errb.String())
			}
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("circusctl logs -f still running 20s after SIGINT")
		}
	})
	return f
}

// line reads the follower's next line, failing the test after d.
func (f *follower) line(t *testing.T, d time.Duration) string {
	t.Helper()
	kill := time.AfterFunc(d, func() { f.cmd.Process.Kill() })
	defer kill.Stop()
	s, err := f.out.ReadString('\n')
	if err != nil {
		t.Fatalf("circusctl logs -f: %v after %q", err, s)
	}
	return strings.TrimSuffix(s, "\n")
}

// TestCircusctlLogs: circusctl logs over the real arbiter: the last words
// of a watcher that stopped after flapping; the last lines of everything;
// and logs -f --since across two watchers, in order, without a gap.
func TestCircusctlLogs(t *testing.T) {
	t.Parallel()
	a := startCtl(t, t.TempDir(), logsINI)
	waitFor(t, "crashy stopped after flapping", 30*time.Second, func() bool { return a.status(t, "crashy") == "stopped" })

	// The last worker's output may be read a moment after its exit.
	boom := regexp.MustCompile(`(?m)^\S+ \S+ crashy\[(\d+)\] stderr: boom: cannot open db$`)
	var out string
	waitFor(t, "the last words of crashy's 3 workers", 20*time.Second, func() bool {
		out = ctlOK(t, a.endpoint, "logs", "crashy", "-n", "0")
		return len(boom.FindAllString(out, -1)) >= 3
	})
	if !strings.Contains(out, "] stdout: starting") {
		t.Errorf("logs crashy: want stdout's lines too, got:\n%s", out)
	}

	out = ctlOK(t, a.endpoint, "logs", "-n", "5")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 {
		t.Errorf("logs -n 5 printed %d lines:\n%s", len(lines), out)
	}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !logsLine.MatchString(l) {
			t.Errorf("logs line %q: want TIME WATCHER[PID] STREAM: TEXT", l)
		}
	}
	if out := ctlOK(t, a.endpoint, "logs", "-n", "0", "--since", "10m"); !strings.Contains(out, fmt.Sprintf("arbiter[%d] log: level=INFO msg=\"arbiter started\"", a.cmd.Process.Pid)) {
		t.Errorf("logs --since 10m lacks the arbiter's start:\n%s", out)
	}
	if _, errOut, code := circusctl(t, a.endpoint, "logs", "alpha", "nosuch"); code != 3 || !strings.Contains(errOut, "program nosuch not found") {
		t.Errorf("logs alpha nosuch: exit %d, stderr %q", code, errOut)
	}
	if _, errOut, code := circusctl(t, a.endpoint, "logs", "--since", "yesterday"); code != 2 || !strings.Contains(errOut, "--since") {
		t.Errorf("logs --since yesterday: exit %d, stderr %q; want a usage error", code, errOut)
	}

	// Long enough that --since 1s leaves most of the ticks out.
	waitFor(t, "alpha's 100th tick", 30*time.Second, func() bool {
		return strings.Contains(ctlOK(t, a.endpoint, "logs", "alpha", "-n", "20"), "stdout: tick 100")
	})
	started := time.Now()
	f := startFollower(t, a.endpoint, "--since", "1s", "alpha", "beta")
	last := map[string]int{} // by watcher and stream: the last tick number
	firstTick := map[string]int{}
	for n := 0; n < 200 || len(last) < 4; n++ {
		l := f.line(t, 20*time.Second)
		m := logsLine.FindStringSubmatch(l)
		if m == nil || (m[2] != "alpha" && m[2] != "beta") {
			t.Fatalf("logs -f alpha beta printed %q", l)
		}
		at, err := time.ParseInLocation("2006-01-02 15:04:05.000", m[1], time.Local)
		if err != nil {
			t.Fatal(err)
		}
		if n < 10 && at.Before(started.Add(-time.Second).Truncate(time.Millisecond)) {
			t.Errorf("--since 1s printed a line of %v, started at %v", at, started)
		}
		word, num, _ := strings.Cut(m[5], " ")
		i, err := strconv.Atoi(num)
		if err != nil || (word != "tick" && word != "tock") {
			t.Fatalf("line %q", l)
		}
		key := m[2] + " " + m[4]
		if p, ok := last[key]; ok && i != p+1 {
			t.Fatalf("%s: %s %d after %d: a line lost or repeated", key, word, i, p)
		}
		if _, ok := last[key]; !ok {
			firstTick[key] = i
		}
		last[key] = i
	}
	for k, i := range firstTick {
		if i == 0 {
			t.Errorf("%s: --since 1s started at tick 0 of a watcher ticking for over 2s", k)
		}
	}
	t.Logf("followed from %v to %v", firstTick, last)
	a.stop(t, syscall.SIGTERM)
}

// TestCircusctlLogsSlowReader: a logs -f whose output nobody reads while
// a worker floods blocks only itself; when it is read again it says how
// many lines it missed, then goes on in order to the flood's last line.
func TestCircusctlLogsSlowReader(t *testing.T) {
	t.Parallel()
	const total, size = 4 << 20, 100
	nlines := 0
	for n := 0; n < total; nlines++ {
		n += size
	}
	a := startCtl(t, t.TempDir(), fmt.Sprintf(`
[watcher:hello]
cmd = /bin/sh -c "echo hello; exec sleep 1000"

[watcher:flood]
cmd = WORKER flood %d %d
autostart = false
stdout_stream.class = QueueStream
`, total, size))
	f := startFollower(t, a.endpoint, "hello", "flood")
	// Once hello's line is out, the follower has its cursor.
	if l := f.line(t, 20*time.Second); !strings.HasSuffix(l, "stdout: hello") {
		t.Fatalf("first line %q, want hello's", l)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := a.c.Call(ctx, "start", map[string]any{"name": "flood", "waiting": true}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("stdout: %09d ", nlines-1)
	waitFor(t, "the flood's last line", 30*time.Second, func() bool {
		return strings.Contains(ctlOK(t, a.endpoint, "logs", "flood", "-n", "1"), want)
	})
	dropped, read, prev := 0, 0, -1
	for {
		l := f.line(t, 20*time.Second)
		if m := regexp.MustCompile(`^-- flood: (\d+) lines dropped: this reader fell behind --$`).FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			dropped += n
			continue
		}
		m := logsLine.FindStringSubmatch(l)
		if m == nil || m[2] != "flood" {
			t.Fatalf("line %q", l)
		}
		i, err := strconv.Atoi(m[5][:9])
		if err != nil || i <= prev {
			t.Fatalf("line %.40q after flood line %d", l, prev)
		}
		if dropped == 0 && prev >= 0 && i != prev+1 {
			t.Fatalf("flood line %d after %d without a note of the lines dropped", i, prev)
		}
		prev = i
		read++
		if i == nlines-1 {
			break
		}
	}
	if dropped == 0 || read+dropped != nlines {
		t.Errorf("%d lines read + %d dropped, want %d in all, some dropped", read, dropped, nlines)
	}
	t.Logf("flood of %d lines: %d read, %d dropped for the reader that stalled", nlines, read, dropped)
	a.stop(t, syscall.SIGTERM)
}

// TestCircusctlLogsArbiterGone: a logs -f whose arbiter stops does not
// wait for ever: it exits 1 once a request times out, naming the endpoint.
func TestCircusctlLogsArbiterGone(t *testing.T) {
	t.Parallel()
	a := startCtl(t, t.TempDir(), "[watcher:hello]\ncmd = /bin/sh -c \"echo hello; exec sleep 1000\"\n")
	cmd := exec.Command(circusctlBin, "--endpoint", a.endpoint, "--timeout", "1", "logs", "-f", "hello")
	var errb strings.Builder
	cmd.Stderr = &errb
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	out := bufio.NewReader(pipe)
	if l, err := out.ReadString('\n'); err != nil || !strings.HasSuffix(l, "stdout: hello\n") {
		cmd.Process.Kill()
		t.Fatalf("first line %q (%v), want hello's", l, err)
	}
	go func() { io.Copy(io.Discard, out); done <- cmd.Wait() }()
	a.stop(t, syscall.SIGTERM)
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("circusctl logs -f still running 30s after its arbiter stopped")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(errb.String(), a.endpoint) {
		t.Errorf("circusctl logs -f after the arbiter stopped: %v, stderr %q; want exit 1 naming the endpoint", err, errb.String())
	}
}
