package arbiter_test

import (
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// A worker that stops answering HTTP but stays alive is replaced within
// health.interval × health.failures + graceful_timeout, with a health event
// naming the reason; a healthy worker is never touched.
func TestHealthReplacesHungWorker(t *testing.T) {
	t.Parallel()
	r := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
health.url = http://127.0.0.1:$(circus.sockets.web.port)/healthz
health.interval = 0.2
health.timeout = 0.2
health.failures = 3
graceful_timeout = 1
`)
	pid := onePid(t, r, "web")
	// Several rounds of checks reach the worker and pass.
	waitFor(t, "3 checks answered", 10*time.Second, func() bool {
		lines, _ := r.Watcher("web").Output().Tail(logs.Query{Pid: pid})
		n := 0
		for _, l := range lines {
			if string(l.Data) == "healthz" {
				n++
			}
		}
		return n >= 3
	})
	if p := r.pids(t, "web"); len(p) != 1 || p[0] != pid {
		t.Fatalf("a healthy worker was replaced: %v, was %d", p, pid)
	}
	if ev := r.events.Of(pubsub.Health); len(ev) != 0 {
		t.Fatalf("health events for a healthy worker: %+v", ev)
	}

	hungAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	var replacedAfter time.Duration
	waitFor(t, "the hung worker replaced", 20*time.Second, func() bool {
		p := r.pids(t, "web")
		if len(p) == 1 && p[0] != pid {
			replacedAfter = time.Since(hungAt)
			return true
		}
		return false
	})
	waitFor(t, "the hung worker reaped", 10*time.Second, func() bool {
		for _, ev := range r.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				return true
			}
		}
		return false
	})
	// 3 × (0.2 s interval + at most 0.2 s timeout) + 1 s graceful_timeout;
	// generous, as a loaded machine may be slow, but not a hang.
	t.Logf("replaced %v after it hung", replacedAfter.Round(time.Millisecond))
	ev := r.events.Of(pubsub.Health)
	if len(ev) != 1 || ev[0].Pid != pid || ev[0].Watcher != "web" ||
		!strings.Contains(ev[0].Reason, "/healthz: 3 failed checks in a row") {
		t.Fatalf("health events = %+v, want one for pid %d naming the URL and 3 failures", ev, pid)
	}
	if st := watcherStatus(t, r, "web"); st.Restarts["unhealthy"] != 1 || st.LastExit == nil || !st.LastExit.Expected || st.LastExit.Pid != pid {
		t.Errorf("Restarts = %v, LastExit = %+v; want the hung worker counted as unhealthy, expected", st.Restarts, st.LastExit)
	}
	// The replacement answers.
	c, err := net.DialTimeout("tcp", r.Sockets()[0].Addr(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// A TCP check passes while its port accepts and replaces the worker once it
// refuses.
func TestHealthTCP(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var accepted atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	r := start(t, `
[watcher:db]
cmd = WORKER sleep
health.tcp = `+ln.Addr().String()+`
health.interval = 0.1
health.timeout = 0.5
health.failures = 2
graceful_timeout = 1
`)
	pid := onePid(t, r, "db")
	waitFor(t, "3 checks accepted", 10*time.Second, func() bool { return accepted.Load() >= 3 })
	if ev := r.events.Of(pubsub.Health); len(ev) != 0 {
		t.Fatalf("health events while the port accepts: %+v", ev)
	}
	ln.Close()
	waitFor(t, "a health event", 20*time.Second, func() bool { return len(r.events.Of(pubsub.Health)) > 0 })
	ev := r.events.Of(pubsub.Health)[0]
	if ev.Pid != pid || !strings.Contains(ev.Reason, "connection refused") {
		t.Fatalf("health event %+v, want pid %d, connection refused", ev, pid)
	}
	waitFor(t, "a replacement", 10*time.Second, func() bool {
		p := r.pids(t, "db")
		return len(p) == 1 && p[0] != pid
	})
}
