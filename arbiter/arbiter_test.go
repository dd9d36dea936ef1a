package arbiter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// get fetches / from addr and returns the pid that answered.
func get(c *http.Client, addr string) (int, error) {
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "pid %d", &pid); err != nil {
		return 0, fmt.Errorf("answer %q: %w", b, err)
	}
	return pid, nil
}

// A pool shares one pre-bound socket; killing a worker gets it replaced at
// once, and a client hammering the socket meanwhile is never refused.
func TestPoolServesThroughKill(t *testing.T) {
	t.Parallel()
	r := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
numprocesses = 3
`)
	addr := r.Sockets()[0].Addr()
	waitFor(t, "3 workers", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 3 })

	seen := map[int]bool{}
	waitFor(t, "two distinct pids answering", 20*time.Second, func() bool {
		// A fresh connection each time, so the kernel can hand it to any
		// worker blocked in accept.
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		pid, err := get(c, addr)
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		seen[pid] = true
		return len(seen) >= 2
	})

	var refused, other, ok atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := get(c, addr)
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, syscall.ECONNREFUSED):
				refused.Add(1)
			default:
				// A request the killed worker had accepted dies with it.
				other.Add(1)
			}
		}
	})
	before := r.pids(t, "web")
	victim := before[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a replacement worker", 10*time.Second, func() bool {
		p := r.pids(t, "web")
		return len(p) == 3 && !contains(p, victim)
	})
	okBefore := ok.Load()
	waitFor(t, "requests served after the kill", 10*time.Second, func() bool { return ok.Load() > okBefore+20 })
	close(stop)
	wg.Wait()
	if n := refused.Load(); n != 0 {
		t.Errorf("%d requests were refused while a worker was replaced; want 0 (ok %d, other errors %d)", n, ok.Load(), other.Load())
	}
	t.Logf("during the kill: %d ok, %d refused, %d other errors", ok.Load(), refused.Load(), other.Load())

	reaps := r.events.Of(pubsub.Reap)
	if len(reaps) == 0 || reaps[0].Pid != victim || reaps[0].ExitCode != -9 {
		t.Errorf("reap events = %+v, want first for pid %d with exit code -9", reaps, victim)
	}
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// A worker that exits at once is stopped by the flapping limit, with a log
// line saying why, and not respawned forever.
func TestFlappingStopsWatcher(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:crashy]
cmd = WORKER exit 3
numprocesses = 1
flapping.attempts = 3
flapping.window = 10
flapping.retry_in = 3600
`)
	w := r.Watcher("crashy")
	waitFor(t, "the watcher to stop", 20*time.Second, func() bool {
		st, _, _ := w.Info(context.Background())
		return st == arbiter.Stopped
	})
	if got := len(r.events.Of(pubsub.Spawn)); got != 3 {
		t.Errorf("spawns = %d, want 3 (the flapping limit)", got)
	}
	if f := r.events.Of(pubsub.Flapping); len(f) != 1 || !strings.Contains(f[0].Reason, "3 deaths within 10s") {
		t.Errorf("flapping events = %+v, want one saying 3 deaths within 10s", f)
	}
	if log := r.log.String(); !strings.Contains(log, "flapping: stopped") || !strings.Contains(log, "retry_in=1h0m0s") {
		t.Errorf("log lacks a clear flapping line:\n%s", log)
	}
	for _, ev := range r.events.Of(pubsub.Reap) {
		if ev.ExitCode != 3 {
			t.Errorf("reap exit code = %d, want 3", ev.ExitCode)
		}
	}
}

// A worker that ignores SIGTERM is killed after graceful_timeout, and its
// grandchild dies with it.
func TestStopEscalatesToGroupKill(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:stubborn]
cmd = WORKER ignoreterm `+pidfile+`
graceful_timeout = 0.3
`)
	pid, grandchild := waitPids(t, pidfile)
	begin := time.Now()
	if err := r.Watcher("stubborn").Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took < 300*time.Millisecond {
		t.Errorf("Stop returned after %s, before graceful_timeout: the worker ignores SIGTERM", took)
	}
	waitFor(t, "worker and grandchild gone", 10*time.Second, func() bool { return gone(pid) && gone(grandchild) })
	var sigs []int
	for _, ev := range r.events.Of(pubsub.Kill) {
		sigs = append(sigs, ev.Signal)
	}
	if want := []int{int(syscall.SIGTERM), int(syscall.SIGKILL)}; fmt.Sprint(sigs) != fmt.Sprint(want) {
		t.Errorf("kill events signals = %v, want %v", sigs, want)
	}
}

// The process state a watcher asks for is what the worker sees.
func TestProcessState(t *testing.T) {
	t.Parallel()
	// Not t.TempDir: its parent is 0700, and the worker runs as nobody.
	dir, err := os.MkdirTemp("", "state")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "state.json")
	ini := `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:state]
cmd = WORKER describe ` + out + `
use_sockets = true
working_dir = ` + dir + `
rlimit_nofile = 128
rlimit_core = 0
umask = 027
nice = 5
`
	asRoot := os.Getuid() == 0
	if asRoot {
		ini += "uid = nobody\ngid = nogroup\n"
	}
	ini += "\n[env:state]\nGREETING = hello $(circus.env.HOME)\n"
	r := start(t, ini)
	var st testproc.State
	waitFor(t, "the worker's report", 10*time.Second, func() bool {
		var ok bool
		st, ok = testproc.ReadState(out)
		return ok
	})
	pids := r.pids(t, "state")
	if len(pids) != 1 || pids[0] != st.Pid {
		t.Errorf("worker pids = %v, report from pid %d", pids, st.Pid)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"umask", fmt.Sprintf("%04o", st.Umask), "0027"},
		{"nice", st.Nice, 5},
		{"nofile", st.NoFile, [2]uint64{128, 128}},
		{"core", st.Core, [2]uint64{0, 0}},
		{"cwd", st.Cwd, dir},
		{"GREETING", st.Env["GREETING"], "hello " + os.Getenv("HOME")},
		{"PATH (no copy_env)", st.Env["PATH"], ""},
		{"LISTEN_PID", st.Env["LISTEN_PID"], strconv.Itoa(st.Pid)},
		{"LISTEN_FDS", st.Env["LISTEN_FDS"], "1"},
		{"LISTEN_FDNAMES", st.Env["LISTEN_FDNAMES"], "web"},
		{"fds", fmt.Sprint(st.Fds), "[0 1 2 3]"},
		{"pgid", st.Pgid, st.Pid},
		{"fd 3 non-blocking", st.NonBlock3, true},
		{"stdout non-blocking", st.NonBlock1, false},
		{"stderr non-blocking", st.NonBlock2, false},
	}
	if asRoot {
		checks = append(checks,
			struct {
				name      string
				got, want any
			}{"uid", st.UID, 65534},
			struct {
				name      string
				got, want any
			}{"gid", st.GID, 65534},
			struct {
				name      string
				got, want any
			}{"groups", fmt.Sprint(st.Groups), "[65534]"},
		)
	} else {
		t.Log("not root: uid, gid and groups not checked")
	}
	for _, c := range checks {
		if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

// A worker that knows nothing but LISTEN_FDS finds its socket and serves;
// after the arbiter stops, no worker and no socket file remain.
func TestListenFDsAndCleanShutdown(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "web.sock")
	r := start(t, `
[socket:web]
path = `+path+`

[watcher:sd]
cmd = WORKER serve
use_sockets = true
numprocesses = 2
`)
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", path)
	}}}
	waitFor(t, "2 workers", 10*time.Second, func() bool { return len(r.pids(t, "sd")) == 2 })
	pids := r.pids(t, "sd")
	var pid int
	waitFor(t, "an answer over the unix socket", 10*time.Second, func() bool {
		var err error
		pid, err = get(c, "sd")
		return err == nil
	})
	if !contains(pids, pid) {
		t.Errorf("answered by pid %d, not one of the workers %v", pid, pids)
	}
	c.CloseIdleConnections()
	r.stop()
	for _, p := range pids {
		if !gone(p) {
			t.Errorf("worker %d still exists after the arbiter stopped", p)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("socket file %s still exists after the arbiter stopped (stat: %v)", path, err)
	}
}

// An orphan a worker leaves behind (a double-forked daemon) is reaped by the
// arbiter as a subreaper, never left a zombie.
func TestOrphanIsReaped(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "orphan")
	r := start(t, `
[watcher:forker]
cmd = WORKER orphan `+pidfile+`
respawn = false
`)
	var orphan int
	waitFor(t, "the orphan's pid", 10*time.Second, func() bool {
		b, err := os.ReadFile(pidfile)
		if err != nil {
			return false
		}
		orphan, err = strconv.Atoi(string(b))
		return err == nil
	})
	waitFor(t, "the orphan reaped", 10*time.Second, func() bool { return gone(orphan) })
	waitFor(t, "an orphan event", 10*time.Second, func() bool {
		for _, ev := range r.events.Of(pubsub.Orphan) {
			if ev.Pid == orphan {
				return true
			}
		}
		return false
	})
	st, _, _ := r.Watcher("forker").Info(context.Background())
	if st != arbiter.Stopped {
		t.Errorf("watcher with respawn = false and no worker left is %v, want stopped", st)
	}
}

// Once the arbiter is shutting down, a watcher refuses to start (a plugin's
// restart, a click in the console): a start then would leave workers the
// ending loop waits on for ever.
func TestNoStartDuringShutdown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	began := filepath.Join(dir, "began")
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
hooks.before_stop = /bin/sh -c 'touch `+began+`; sleep 0.5'
`)
	w := r.Watcher("web")
	r.cancel()
	waitFor(t, "the stop under way", 10*time.Second, func() bool { _, err := os.Stat(began); return err == nil })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Start(ctx); !errors.Is(err, arbiter.ErrShutdown) {
		t.Errorf("Start during shutdown = %v, want ErrShutdown", err)
	}
	r.stop() // fails the test if Run does not return
}
