package arbiter_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

const notifyINI = `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web) --notify
numprocesses = 2
ready = notify
ready_timeout = 1
graceful_timeout = 2
`

// readyPids are the pids of the ready events so far.
func readyPids(r *running) []int {
	var pids []int
	for _, ev := range r.events.Of(pubsub.Ready) {
		pids = append(pids, ev.Pid)
	}
	return pids
}

// index is the position of the first event of kind about pid, or -1.
func index(evs []pubsub.Event, kind pubsub.Kind, pid int) int {
	return slices.IndexFunc(evs, func(ev pubsub.Event) bool { return ev.Kind == kind && ev.Pid == pid })
}

// With ready = notify a worker is ready when it sends READY=1 on its own
// NOTIFY_SOCKET; a reload stops each old worker only after the new ones
// are ready, and incr answers once its worker is.
func TestReadyNotify(t *testing.T) {
	t.Parallel()
	r := start(t, notifyINI)
	waitFor(t, "2 workers ready", 10*time.Second, func() bool { return len(readyPids(r)) == 2 })
	old := r.pids(t, "web")
	if !slices.Equal(old, sortedCopy(readyPids(r))) {
		t.Fatalf("ready pids %v, workers %v", readyPids(r), old)
	}
	w := r.Watcher("web")
	if err := w.Reload(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	evs := r.events.All()
	fresh := r.pids(t, "web")
	if len(fresh) != 2 || slices.Contains(fresh, old[0]) || slices.Contains(fresh, old[1]) {
		t.Fatalf("after reload: %v, before %v", fresh, old)
	}
	for _, n := range fresh {
		for _, o := range old {
			if ri, ki := index(evs, pubsub.Ready, n), index(evs, pubsub.Kill, o); ri < 0 || ki < 0 || ri > ki {
				t.Errorf("old worker %d signalled (event %d) before new worker %d was ready (event %d)", o, ki, n, ri)
			}
		}
	}
	// Sequential: one old worker at a time, each signalled only once its
	// own replacement is ready.
	from := len(r.events.All())
	old = fresh
	if err := w.Reload(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	evs = r.events.All()[from:]
	var order []string
	for _, ev := range evs {
		if ev.Watcher == "web" && (ev.Kind == pubsub.Ready || ev.Kind == pubsub.Kill && ev.Signal == 15) {
			order = append(order, ev.Kind.String())
		}
	}
	if got := strings.Join(order, " "); got != "ready kill ready kill" {
		t.Errorf("sequential reload: %q, want each old worker signalled after one new worker is ready", got)
	}
	n, err := w.Incr(context.Background(), 1)
	if err != nil || n != 3 {
		t.Fatalf("Incr = %d, %v", n, err)
	}
	now := r.pids(t, "web")
	for _, pid := range now {
		if !slices.Contains(readyPids(r), pid) {
			t.Errorf("incr answered before worker %d was ready (ready: %v)", pid, readyPids(r))
		}
	}
}

func sortedCopy(s []int) []int {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// load hammers url until stop is closed, counting requests and failures.
func load(t *testing.T, url string, stop <-chan struct{}) (ok, failed *atomic.Int64, done *sync.WaitGroup) {
	ok, failed, done = &atomic.Int64{}, &atomic.Int64{}, &sync.WaitGroup{}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range 2 {
		done.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get(url)
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err != nil {
					failed.Add(1)
					t.Logf("request failed: %v", err)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	return ok, failed, done
}

// A reload to a version that never becomes ready (one that hangs, one that
// exits at once) fails with the reason, and the old workers serve on
// throughout: no request fails.
func TestReloadNeverReady(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, cmd, want string
	}{
		{"hangs", "WORKER sleep", "was not ready within 1s (ready = notify)"},
		{"exits", "WORKER exit 1", "exited (code 1) before it was ready"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, notifyINI)
			waitFor(t, "2 workers ready", 10*time.Second, func() bool { return len(readyPids(r)) == 2 })
			old := r.pids(t, "web")
			stop := make(chan struct{})
			ok, failed, done := load(t, "http://"+r.Sockets()[0].Addr()+"/", stop)
			waitFor(t, "requests served", 10*time.Second, func() bool { return ok.Load() > 10 })

			cfg, err := r.Watcher("web").Options(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			cfg.Cmd = strings.ReplaceAll(tt.cmd, "WORKER", worker)
			began := time.Now()
			err = r.Set(context.Background(), "web", cfg, []string{"cmd"})
			took := time.Since(began)
			before := ok.Load()
			waitFor(t, "requests served after the reload failed", 10*time.Second, func() bool { return ok.Load() > before+10 })
			close(stop)
			done.Wait()

			if err == nil || !strings.Contains(err.Error(), "reload abandoned, the old workers keep running") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Set = %v, want a reload failure saying %q", err, tt.want)
			}
			t.Logf("reload failed after %v: %v; %d requests served, %d failed", took.Round(time.Millisecond), err, ok.Load(), failed.Load())
			if got := r.pids(t, "web"); !slices.Equal(got, old) {
				t.Errorf("workers %v after the failed reload, want the old ones %v", got, old)
			}
			if failed.Load() != 0 {
				t.Errorf("%d requests failed during the reload", failed.Load())
			}
			if c := r.Watcher("web").Config(); !strings.Contains(c.Cmd, "--notify") {
				t.Errorf("cmd after the failed reload = %q, want the old one", c.Cmd)
			}
			for _, ev := range r.events.Of(pubsub.Kill) {
				if slices.Contains(old, ev.Pid) {
					t.Errorf("an old worker was signalled: %+v", ev)
				}
			}
		})
	}
}

// ready = health: a worker is ready at its first passing check, and Start
// answers only then.
func TestReadyHealth(t *testing.T) {
	t.Parallel()
	r := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
health.url = http://127.0.0.1:$(circus.sockets.web.port)/healthz
health.interval = 30
ready = health
`)
	// The arbiter has started the watcher when Run's start-up ends, and
	// the start waits for readiness: the event is there already, although
	// the interval is 30 s (a worker that is not ready is probed often).
	waitFor(t, "the worker ready", 10*time.Second, func() bool { return len(readyPids(r)) == 1 })
	if st, _, _ := r.Watcher("web").Info(context.Background()); st != arbiter.Active {
		t.Fatalf("state %v", st)
	}
	evs := r.events.All()
	ready := index(evs, pubsub.Ready, readyPids(r)[0])
	started := slices.IndexFunc(evs, func(ev pubsub.Event) bool { return ev.Kind == pubsub.Start && ev.Watcher == "web" })
	if ready < 0 || started < ready {
		t.Fatalf("start event at %d, ready at %d: the watcher became active before its worker was ready", started, ready)
	}
	if got := r.pids(t, "web"); !slices.Equal(got, readyPids(r)) {
		t.Fatalf("workers %v, ready %v", got, readyPids(r))
	}
}

// ready = warmup: a worker is ready warmup_delay after it started.
func TestReadyWarmup(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:slow]
cmd = WORKER sleep
warmup_delay = 0.3
ready = warmup
`)
	waitFor(t, "the worker ready", 10*time.Second, func() bool { return len(readyPids(r)) == 1 })
	spawn, ready := r.events.Of(pubsub.Spawn)[0], r.events.Of(pubsub.Ready)[0]
	if spawn.Pid != ready.Pid || ready.Time.Sub(spawn.Time) < 300*time.Millisecond {
		t.Fatalf("spawn %+v, ready %+v: want ready warmup_delay after the spawn", spawn, ready)
	}
}

// A worker that stops feeding its watchdog (WATCHDOG=1 every watchdog_sec)
// is replaced, as systemd's WatchdogSec does.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	r := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web) --notify
ready = notify
watchdog_sec = 0.4
graceful_timeout = 1
`)
	waitFor(t, "the worker ready", 10*time.Second, func() bool { return len(readyPids(r)) == 1 })
	pid := r.pids(t, "web")[0]
	// Fed for several periods: not replaced.
	waitFor(t, "1.2 s of a fed watchdog", 10*time.Second, func() bool {
		return time.Since(r.events.Of(pubsub.Ready)[0].Time) > 1200*time.Millisecond
	})
	if len(r.events.Of(pubsub.Health)) != 0 {
		t.Fatalf("a fed worker was replaced: %+v", r.events.Of(pubsub.Health))
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a watchdog health event", 10*time.Second, func() bool { return len(r.events.Of(pubsub.Health)) > 0 })
	ev := r.events.Of(pubsub.Health)[0]
	if ev.Pid != pid || !strings.Contains(ev.Reason, "watchdog: no WATCHDOG=1 within watchdog_sec 400ms") {
		t.Fatalf("health event %+v, want pid %d and the watchdog", ev, pid)
	}
	waitFor(t, "a new worker ready", 10*time.Second, func() bool {
		p := r.pids(t, "web")
		return len(p) == 1 && p[0] != pid && slices.Contains(readyPids(r), p[0])
	})
}

// A worker that is never ready fails as a spawn does: retried max_retry
// times, then the watcher stops (never a busy loop).
func TestReadyTimeoutStopsWatcher(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:never]
cmd = WORKER sleep
ready = notify
ready_timeout = 0.2
max_retry = 1
graceful_timeout = 1
`)
	w := r.Watcher("never")
	waitFor(t, "the watcher stopped", 20*time.Second, func() bool {
		st, procs, _ := w.Info(context.Background())
		return st == arbiter.Stopped && len(procs) == 0
	})
	if n := len(r.events.Of(pubsub.Spawn)); n != 2 {
		t.Errorf("%d spawns, want 2 (max_retry = 1)", n)
	}
	if !strings.Contains(r.log.String(), "was not ready within 200ms") {
		t.Errorf("log does not say why:\n%s", r.log.String())
	}
}

// Removing a notify watcher with nostop leaves its workers running and ends
// its loop: their notify readers end with it.
func TestRemoveNostopNotify(t *testing.T) {
	t.Parallel()
	r := start(t, notifyINI)
	waitFor(t, "2 workers ready", 10*time.Second, func() bool { return len(readyPids(r)) == 2 })
	pids := r.pids(t, "web")
	t.Cleanup(func() {
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := r.Remove(ctx, "web", true); err != nil {
		t.Fatalf("Remove(nostop): %v", err)
	}
	for _, pid := range pids {
		if gone(pid) {
			t.Errorf("worker %d stopped by rm --nostop", pid)
		}
	}
}

// At start-up a priority orders as systemd's After= does: watchers of one
// priority start together, and those of a lower one only once the higher
// are ready; a watcher that cannot become ready holds them back by its
// first attempt, not by all its retries.
func TestStartOrderWaitsForReadiness(t *testing.T) {
	t.Parallel()
	t.Run("ready", func(t *testing.T) {
		t.Parallel()
		gate := filepath.Join(t.TempDir(), "gate")
		r := launch(t, `
[watcher:db]
cmd = WORKER readywhen `+gate+`
ready = notify
ready_timeout = 60
priority = 10

[watcher:peer]
cmd = WORKER sleep
priority = 10

[watcher:app]
cmd = WORKER sleep
priority = 1
`)
		waitFor(t, "db and peer spawned", 20*time.Second, func() bool {
			return len(spawnsOf(r, "db")) == 1 && len(spawnsOf(r, "peer")) == 1
		})
		// db waits for its gate; peer, of the same priority, did not
		// wait for db. app must not start while db is not ready (had it
		// started early, its spawn would also come before db's ready
		// event, checked below).
		if n := len(spawnsOf(r, "app")); n != 0 {
			t.Fatalf("app spawned %d workers while db, of a higher priority, was not ready", n)
		}
		select {
		case <-r.Started():
			t.Fatal("the arbiter says it started while db is not ready")
		default:
		}
		if err := os.WriteFile(gate, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		select {
		case <-r.Started():
		case <-time.After(20 * time.Second):
			t.Fatal("the arbiter did not start after db became ready")
		}
		evs := r.events.All()
		ready := slices.IndexFunc(evs, func(e pubsub.Event) bool { return e.Kind == pubsub.Ready && e.Watcher == "db" })
		app := slices.IndexFunc(evs, func(e pubsub.Event) bool { return e.Kind == pubsub.Spawn && e.Watcher == "app" })
		if ready < 0 || app < 0 || app < ready {
			t.Errorf("db's ready event at %d, app's spawn at %d; want app spawned after db was ready", ready, app)
		}
	})
	// A watcher that fails its first attempt (a worker never ready, or
	// dead before it was ready) holds the lower priority back by that
	// attempt, not by all its retries: app starts before db gives up.
	for _, tt := range []struct {
		name, db string
		spawns   int // 1 + max_retry
		why      string
	}{
		{"never", "cmd = WORKER sleep\nready_timeout = 0.3\nmax_retry = 3\ngraceful_timeout = 1", 4, "was not ready within 300ms"},
		{"dies", "cmd = WORKER exit 1\nmax_retry = 2", 3, "exited (code 1) before it was ready"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := start(t, `
[watcher:db]
`+tt.db+`
ready = notify
priority = 10

[watcher:app]
cmd = WORKER sleep
priority = 1
`)
			waitFor(t, "db to give up", 30*time.Second, func() bool {
				st, _, _ := r.Watcher("db").Info(context.Background())
				return st == arbiter.Stopped && strings.Contains(r.log.String(), "giving up")
			})
			if n := len(spawnsOf(r, "db")); n != tt.spawns {
				t.Errorf("db spawned %d times, want %d", n, tt.spawns)
			}
			log := r.log.String()
			if !strings.Contains(log, tt.why) || !strings.Contains(log, "not started yet, retrying") {
				t.Errorf("the log does not say why db failed (%q) or that it was retrying when app started:\n%s", tt.why, log)
			}
			evs := r.events.All()
			app := slices.IndexFunc(evs, func(e pubsub.Event) bool { return e.Kind == pubsub.Spawn && e.Watcher == "app" })
			dbStop := slices.IndexFunc(evs, func(e pubsub.Event) bool { return e.Kind == pubsub.Stop && e.Watcher == "db" })
			if app < 0 || dbStop < 0 || app > dbStop {
				t.Errorf("app spawned at event %d, db stopped at %d; want app started after db's first attempt failed, before it gave up", app, dbStop)
			}
		})
	}
}

// spawnsOf lists the pids of the spawn events of watcher name, in order.
func spawnsOf(r *running, name string) []int {
	var pids []int
	for _, e := range r.events.Of(pubsub.Spawn) {
		if e.Watcher == name {
			pids = append(pids, e.Pid)
		}
	}
	return pids
}
