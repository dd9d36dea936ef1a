package arbiter_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// status reads a watcher's status, failing the test if it cannot.
func (r *running) status(t testing.TB, name string) arbiter.Status {
	t.Helper()
	st, err := r.Watcher(name).Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// readyWorkers counts a watcher's ready workers that are not stopping.
func readyWorkers(st arbiter.Status) int {
	n := 0
	for _, p := range st.Procs {
		if p.Ready && !p.Stopping {
			n++
		}
	}
	return n
}

// 16 clients at once on a pool of 1 whose workers serve one request at a
// time, 100 ms each: the pool grows to max from the accept queue, every
// request is served, and when the load stops it shrinks back to min after
// idle, its workers stopped gracefully.
func TestAutoscaleUnderLoad(t *testing.T) {
	t.Parallel()
	r := start(t, `
[socket:web]
host = 127.0.0.1
port = 0
backlog = 64

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 100ms
numprocesses = 1
autoscale.min = 1
autoscale.max = 16
autoscale.idle = 1
autoscale.down_interval = 0.1
graceful_timeout = 10
`)
	addr := r.Sockets()[0].Addr()
	waitFor(t, "1 worker", 10*time.Second, func() bool { return readyWorkers(r.status(t, "web")) == 1 })

	var served, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 16 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := testproc.AskSerial("tcp", addr); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				} else {
					served.Add(1)
				}
			}
		})
	}
	var full time.Duration
	waitFor(t, "16 ready workers", 60*time.Second, func() bool {
		if readyWorkers(r.status(t, "web")) == 16 {
			full = time.Since(t0)
			return true
		}
		return false
	})
	n0, c0 := served.Load(), time.Now()
	waitFor(t, "2s of full load", 10*time.Second, func() bool { return time.Since(c0) >= 2*time.Second })
	rate := float64(served.Load()-n0) / time.Since(c0).Seconds()
	close(stop)
	wg.Wait()
	ups := r.events.Of(pubsub.Scale)
	first := time.Duration(0)
	if len(ups) > 0 {
		first = ups[0].Time.Sub(t0)
	}
	t.Logf("16 clients: first scale event after %s, 16 workers ready after %s; then %.0f requests/s (16 workers at 100ms: 160)",
		first.Round(time.Millisecond), full.Round(time.Millisecond), rate)
	if n := failed.Load(); n != 0 {
		t.Errorf("%d of %d requests failed; the first: %v", n, n+served.Load(), firstErr.Load())
	}

	stopped := time.Now()
	waitFor(t, "the pool back to 1", 60*time.Second, func() bool {
		st := r.status(t, "web")
		return st.Target == 1 && len(st.Procs) == 1
	})
	t.Logf("load stopped: back to 1 worker after %s (idle 1s, then one every 0.1s)", time.Since(stopped).Round(time.Millisecond))

	evs := r.events.Of(pubsub.Scale)
	if len(evs) == 0 || evs[0].From != 1 || evs[0].To <= 1 || !strings.HasPrefix(evs[0].Reason, "queue ") {
		t.Fatalf("scale events = %+v, want the first from 1 upward for a queue", evs)
	}
	last := evs[len(evs)-1]
	if last.To != 1 || last.From != 2 || !strings.HasPrefix(last.Reason, "queue empty for ") {
		t.Errorf("last scale event = %+v, want 2 → 1 for an empty queue", last)
	}
	for _, e := range evs {
		if e.To < 1 || e.To > 16 {
			t.Errorf("scale event %+v outside 1..16", e)
		}
	}
	for _, e := range r.events.Of(pubsub.Reap) {
		if e.ExitCode != 0 {
			t.Errorf("reap %+v: a worker stopped by the autoscaler should drain and exit 0", e)
		}
	}
}

// With min 0 the pool empties after idle while its socket stays bound and
// listening; the first connection then waits in the backlog while a
// worker starts, and is answered, never refused.
func TestAutoscaleFromZero(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ name, network, socket string }{
		{"tcp", "tcp", "host = 127.0.0.1\nport = 0"},
		{"unix", "unix", "path = DIR/web.sock"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, `
[socket:web]
`+tc.socket+`

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 100ms
numprocesses = 0
autoscale.min = 0
autoscale.max = 4
autoscale.idle = 0.5
autoscale.down_interval = 0.1
`)
			addr := r.Sockets()[0].Addr()
			if st := r.status(t, "web"); st.State != arbiter.Active || len(st.Procs) != 0 {
				t.Fatalf("at start: %v with %d workers, want active with none", st.State, len(st.Procs))
			}
			for i := range 2 {
				t0 := time.Now()
				pid, err := testproc.AskSerial(tc.network, addr)
				if err != nil {
					t.Fatalf("request %d to an empty pool: %v", i+1, err)
				}
				t.Logf("request %d to an empty pool answered in %s (by pid %d)", i+1, time.Since(t0).Round(time.Millisecond), pid)
				waitFor(t, "the pool empty again", 30*time.Second, func() bool {
					st := r.status(t, "web")
					return st.Target == 0 && len(st.Procs) == 0
				})
			}
			evs := r.events.Of(pubsub.Scale)
			if len(evs) < 4 || evs[0].From != 0 || evs[0].To != 1 || evs[0].Reason != "queue 1, no worker" {
				t.Errorf("scale events = %+v, want 0 → 1 at the first connection, first", evs)
			}
		})
	}
}

// reloadconfig applies new autoscale.* keys live: the workers stay, the
// size comes within the new bounds; a watcher whose socket has no accept
// queue cannot be autoscaled, at run time either.
func TestAutoscaleReloadAndErrors(t *testing.T) {
	t.Parallel()
	const ini = `
[socket:web]
host = 127.0.0.1
port = 0

[socket:udp]
host = 127.0.0.1
port = 0
type = SOCK_DGRAM

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 100ms
numprocesses = 3
autoscale.max = %d
autoscale.idle = 3600

[watcher:dgram]
cmd = WORKER sleep $(circus.sockets.udp)
`
	r := start(t, fmt.Sprintf(ini, 4))
	waitFor(t, "3 workers", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 3 })
	if n, err := r.Watcher("web").Incr(context.Background(), 10); err != nil || n != 4 {
		t.Fatalf("Incr(10) = %d, %v, want 4 (max)", n, err)
	}
	before := r.pids(t, "web")
	path := r.Config().File
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(fmt.Sprintf(ini, 2), "WORKER", worker)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.ReloadFile(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := r.pids(t, "web")
	if len(after) != 2 || !contains(before, after[0]) || !contains(before, after[1]) {
		t.Errorf("workers %v after autoscale.max 4 → 2 (were %v): want 2 of the same", after, before)
	}
	if evs := r.events.Of(pubsub.Scale); len(evs) != 1 || evs[0].From != 4 || evs[0].To != 2 {
		t.Errorf("scale events = %+v, want 4 → 2", evs)
	}
	// set numprocesses, as circusctl set does: within [min, max].
	for _, tc := range []struct {
		n    string
		want int
	}{{"50", 2}, {"0", 1}, {"2", 2}} {
		if err := r.Set(context.Background(), "web", withOptions(t, r, "web", map[string]string{"numprocesses": tc.n}), []string{"numprocesses"}); err != nil {
			t.Fatalf("set numprocesses %s: %v", tc.n, err)
		}
		if st := r.status(t, "web"); st.Target != tc.want {
			t.Errorf("set numprocesses %s: numprocesses %d, want %d", tc.n, st.Target, tc.want)
		}
	}

	err := r.Set(context.Background(), "dgram", withOptions(t, r, "dgram", map[string]string{"autoscale.max": "4"}), []string{"autoscale.max"})
	if err == nil || !strings.Contains(err.Error(), "[socket:udp]") {
		t.Errorf("set autoscale.max on a datagram socket's watcher = %v, want an error naming [socket:udp]", err)
	}
	nc, err := config.NewWatcher("more", map[string]string{"cmd": worker + " sleep $(circus.sockets.udp)", "autoscale.max": "2"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Add(context.Background(), nc, false); err == nil || !strings.Contains(err.Error(), "has none to read") {
		t.Errorf("add an autoscaled watcher on a datagram socket = %v, want an error", err)
	}
}

func withOptions(t *testing.T, r *running, name string, opts map[string]string) *config.Watcher {
	t.Helper()
	cur, err := r.Watcher(name).Options(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := cur.With(opts)
	if err != nil {
		t.Fatal(err)
	}
	return nc
}
