package main_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// notification is one datagram the arbiter sent to its NOTIFY_SOCKET.
type notification struct {
	at   time.Time
	vars map[string]string
}

func (n notification) String() string {
	var s []string
	for k, v := range n.vars {
		s = append(s, k+"="+v)
	}
	slices.Sort(s)
	return strings.Join(s, " ")
}

// manager is the service manager's end of sd_notify: a datagram socket
// the test binds, as systemd does, read by a goroutine into a channel.
type manager struct {
	path string
	c    chan notification
}

func newManager(t *testing.T, path string) *manager {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	m := &manager{path: path, c: make(chan notification, 1024)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			vars := map[string]string{}
			for _, line := range strings.Split(string(buf[:n]), "\n") {
				k, v, _ := strings.Cut(line, "=")
				vars[k] = v
			}
			m.c <- notification{at: time.Now(), vars: vars}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return m
}

// next returns the next notification that is not a bare watchdog ping,
// failing the test if none comes within 20s; pings seen on the way are
// appended to pings.
func (m *manager) next(t *testing.T, what string, pings *[]time.Time) notification {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case n := <-m.c:
			if _, ok := n.vars["WATCHDOG"]; ok && pings != nil {
				*pings = append(*pings, n.at)
			}
			if len(n.vars) == 1 && n.vars["WATCHDOG"] == "1" {
				continue
			}
			return n
		case <-deadline:
			t.Fatalf("no notification within 20s, waiting for %s", what)
			return notification{}
		}
	}
}

// ping waits for the next WATCHDOG=1 and returns when it came.
func (m *manager) ping(t *testing.T) time.Time {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case n := <-m.c:
			if n.vars["WATCHDOG"] == "1" {
				return n.at
			}
		case <-deadline:
			t.Fatal("no WATCHDOG=1 within 20s")
		}
	}
}

// nextWith skips notifications until one that sets key to value.
func (m *manager) nextWith(t *testing.T, key, value string, pings *[]time.Time) notification {
	t.Helper()
	for {
		n := m.next(t, key+"="+value, pings)
		if n.vars[key] == value {
			return n
		}
		t.Logf("notification on the way to %s=%s: %v", key, value, n)
	}
}

func monotonicUsec() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano() / 1000
}

// The arbiter as a systemd Type=notify service, on an abstract
// NOTIFY_SOCKET as systemd gives containers: READY=1 once its watcher is
// up, RELOADING=1 (with the time) then READY=1 around a SIGHUP and around
// reloadconfig, also when the new file is refused, STOPPING=1 on SIGTERM,
// and WATCHDOG=1 at half of WATCHDOG_USEC all along. Its workers see none
// of the service's variables.
func TestNotifySystemd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	base := fmt.Sprintf("[watcher:a]\ncmd = WORKER describe %s/a-$(circus.wid).json\nnumprocesses = %%d\n", dir)
	writeINI(t, ini, fmt.Sprintf(base, 2))
	m := newManager(t, fmt.Sprintf("@ringmaster-test-notify-%d", os.Getpid()))
	const watchdog = 400 * time.Millisecond
	cmd := exec.Command(arbiterBin, ini)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+m.path,
		"WATCHDOG_USEC="+strconv.FormatInt(watchdog.Microseconds(), 10))
	p := startArbiterCmd(t, cmd)
	var pings []time.Time

	n := m.next(t, "READY=1", &pings)
	if n.vars["READY"] != "1" || n.vars["STATUS"] != "1 watcher: 1 active; 2 workers" {
		t.Fatalf("first notification = %v, want READY=1 STATUS=1 watcher: 1 active; 2 workers", n)
	}
	var st testproc.State
	waitFor(t, "worker 1's report", 10*time.Second, func() bool {
		var ok bool
		st, ok = testproc.ReadState(filepath.Join(dir, "a-1.json"))
		return ok
	})
	for _, k := range []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} {
		if v, ok := st.Env[k]; ok {
			t.Errorf("worker inherited %s=%s", k, v)
		}
	}

	// SIGHUP: a bigger pool. The time sent is the reload's, read on the
	// same clock between the signal and its notification.
	writeINI(t, ini, fmt.Sprintf(base, 3))
	before := monotonicUsec()
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	n = m.next(t, "RELOADING=1", &pings)
	after := monotonicUsec()
	if n.vars["RELOADING"] != "1" {
		t.Fatalf("after SIGHUP: %v, want RELOADING=1", n)
	}
	if us, err := strconv.ParseInt(n.vars["MONOTONIC_USEC"], 10, 64); err != nil || us < before || us > after {
		t.Errorf("RELOADING=1 with MONOTONIC_USEC=%q, want a CLOCK_MONOTONIC time in [%d, %d]", n.vars["MONOTONIC_USEC"], before, after)
	}
	if n = m.next(t, "READY=1", &pings); n.vars["READY"] != "1" {
		t.Fatalf("after RELOADING=1: %v, want READY=1", n)
	}
	m.nextWith(t, "STATUS", "1 watcher: 1 active; 3 workers", &pings)

	// A file that does not load: reloaded all the same, as far as the
	// manager is concerned, and STATUS says why nothing changed.
	writeINI(t, ini, fmt.Sprintf(base, 3)+"\n[watcher:b]\ncmd = WORKER sleep\nnumprocesses = many\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	if n = m.next(t, "RELOADING=1", &pings); n.vars["RELOADING"] != "1" {
		t.Fatalf("after a SIGHUP with a bad file: %v, want RELOADING=1", n)
	}
	n = m.next(t, "READY=1", &pings)
	if n.vars["READY"] != "1" || !strings.Contains(n.vars["STATUS"], "last reload failed: ") || !strings.Contains(n.vars["STATUS"], "numprocesses") {
		t.Fatalf("after a refused reload: %v, want READY=1 and a STATUS saying why", n)
	}

	// reloadconfig through the control endpoint, of the good file again.
	writeINI(t, ini, fmt.Sprintf(base, 3))
	if out, err := exec.Command(circusctlBin, "--endpoint", controlEndpoint(ini), "reloadconfig").CombinedOutput(); err != nil {
		t.Fatalf("circusctl reloadconfig: %v\n%s", err, out)
	}
	if n = m.next(t, "RELOADING=1", &pings); n.vars["RELOADING"] != "1" {
		t.Fatalf("after reloadconfig: %v, want RELOADING=1", n)
	}
	if n = m.next(t, "READY=1", &pings); n.vars["READY"] != "1" || strings.Contains(n.vars["STATUS"], "failed") {
		t.Fatalf("after RELOADING=1: %v, want READY=1 without the old failure", n)
	}

	for len(pings) < 6 {
		pings = append(pings, m.ping(t))
	}
	// The pings come at half the interval; the median gap is robust to a
	// busy machine's odd late one, and must be well within the interval.
	var gaps []time.Duration
	for i := 1; i < len(pings); i++ {
		gaps = append(gaps, pings[i].Sub(pings[i-1]))
	}
	slices.Sort(gaps)
	if med := gaps[len(gaps)/2]; med < watchdog/4 || med > watchdog {
		t.Errorf("median gap between WATCHDOG=1 = %v (gaps %v), want about %v, within %v", med, gaps, watchdog/2, watchdog)
	}

	// The manager has STOPPING=1 before the arbiter exits.
	p.stop(t, syscall.SIGTERM)
	m.nextWith(t, "STOPPING", "1", nil)
}
