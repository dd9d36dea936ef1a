package arbiter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// fakeLauncher starts fake workers whose fate a test scripts: each lives
// for lifetime (0: until signalled) and dies on the signals in dieOn.
type fakeLauncher struct {
	lifetime time.Duration
	dieOn    map[syscall.Signal]bool
	delay    time.Duration // each spawn takes this long

	mu      sync.Mutex
	nextPid int
	log     []string // "spawn PID@T", "signal PID SIG@T"
	start   time.Time
}

func (f *fakeLauncher) record(format string, args ...any) {
	f.log = append(f.log, fmt.Sprintf(format, args...)+fmt.Sprintf("@%s", time.Since(f.start)))
}

func (f *fakeLauncher) launch(w *config.Watcher, socks []*sockets.Socket, wid int, cg spawnCgroups, exits chan<- exitStatus, _ *logs.Output) (proc, error) {
	time.Sleep(f.delay)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextPid++
	p := &fakeProc{f: f, pid: 1000 + f.nextPid, exits: exits}
	f.record("spawn %d", p.pid)
	if f.lifetime > 0 {
		time.AfterFunc(f.lifetime, func() { p.exit(unix.WaitStatus(1 << 8)) })
	}
	return p, nil
}

func (f *fakeLauncher) events() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

type fakeProc struct {
	f     *fakeLauncher
	pid   int
	exits chan<- exitStatus
	once  sync.Once
	dead  bool // guarded by f.mu
}

func (p *fakeProc) Pid() int { return p.pid }

func (p *fakeProc) Signal(sig syscall.Signal) error { return p.SignalGroup(sig) }

func (p *fakeProc) SignalGroup(sig syscall.Signal) error {
	p.f.mu.Lock()
	if p.dead {
		p.f.mu.Unlock()
		return nil
	}
	p.f.record("signal %d %d", p.pid, sig)
	die := p.f.dieOn[sig] || sig == syscall.SIGKILL
	p.f.mu.Unlock()
	if die {
		p.exit(unix.WaitStatus(sig))
	}
	return nil
}

func (p *fakeProc) exit(st unix.WaitStatus) {
	p.once.Do(func() {
		p.f.mu.Lock()
		p.dead = true
		p.f.mu.Unlock()
		// Delivered from another goroutine, as the reaper does.
		go func() { p.exits <- exitStatus{pid: p.pid, status: st} }()
	})
}

func (p *fakeProc) Release() {}

func testWatcher(mod func(*config.Watcher)) *config.Watcher {
	w := &config.Watcher{
		Name: "fake", Cmd: "fake", NumProcesses: 1, Autostart: true, Respawn: true,
		MaxRetry: 5, GracefulTimeout: 2 * time.Second, StopSignal: syscall.SIGTERM,
		UID: -1, GID: -1, Umask: -1,
		FlapAttempts: 3, FlapWindow: 5 * time.Second, FlapRetryIn: 7 * time.Second, FlapMaxRetry: 2,
	}
	if mod != nil {
		mod(w)
	}
	return w
}

type eventLog struct {
	mu     sync.Mutex
	events []pubsub.Event
}

func (e *eventLog) Publish(ev pubsub.Event) {
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
}

func (e *eventLog) count(k pubsub.Kind) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.events {
		if ev.Kind == k {
			n++
		}
	}
	return n
}

// runWatcher runs w's loop inside the bubble and ends it with the test.
func runWatcher(t *testing.T, cfg *config.Watcher, l launcher, pub Publisher) *Watcher {
	w := newWatcher(cfg, nil, slog.New(slog.NewTextHandler(t.Output(), nil)), pub, l)
	go w.run()
	t.Cleanup(func() {
		if err := w.Stop(context.Background()); err != nil {
			t.Errorf("Stop: %v", err)
		}
		close(w.quit)
		<-w.done
	})
	return w
}

func state(t *testing.T, w *Watcher) State {
	st, _, err := w.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A crash loop trips the limit, is retried after retry_in, and after
// max_retry retries stays stopped.
func TestFlappingRetriesThenGivesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{lifetime: 100 * time.Millisecond, start: time.Now()}
		ev := &eventLog{}
		w := runWatcher(t, testWatcher(nil), l, ev)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Three deaths 100ms apart trip the limit at 300ms.
		time.Sleep(350 * time.Millisecond)
		synctest.Wait()
		if got := state(t, w); got != Stopped {
			t.Fatalf("state after 3 quick deaths = %v, want stopped", got)
		}
		if got := ev.count(pubsub.Spawn); got != 3 {
			t.Errorf("spawns before the limit = %d, want 3", got)
		}
		// Retried at 0.3+7s; it flaps again by 7.6s.
		time.Sleep(7 * time.Second)
		synctest.Wait()
		if got := ev.count(pubsub.Spawn); got != 4 {
			t.Errorf("spawns just after retry_in = %d, want 4", got)
		}
		// Two retries allowed (max_retry = 2): after the second retry
		// flaps, it gives up.
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if got := ev.count(pubsub.Flapping); got != 3 {
			t.Errorf("flapping events = %d, want 3 (first + 2 retries)", got)
		}
		if got := ev.count(pubsub.Spawn); got != 9 {
			t.Errorf("spawns in all = %d, want 9", got)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		if got := ev.count(pubsub.Spawn); got != 9 {
			t.Errorf("spawns an hour after giving up = %d, want 9", got)
		}
		if got := state(t, w); got != Stopped {
			t.Errorf("state = %v, want stopped", got)
		}
	})
}

// SIGKILL follows stop_signal exactly graceful_timeout later.
func TestGracefulTimeoutEscalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{start: time.Now()} // ignores SIGTERM
		w := runWatcher(t, testWatcher(nil), l, nil)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second)
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := []string{"spawn 1001@0s", "signal 1001 15@1s", "signal 1001 9@3s"}
		if got := l.events(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("events = %v, want %v", got, want)
		}
	})
}

// max_age recycles a worker: the replacement is spawned before the old one
// is signalled, so capacity never dips (unlike Circus).
func TestMaxAgeRecyclesWithoutDip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now()}
		w := runWatcher(t, testWatcher(func(c *config.Watcher) {
			c.MaxAge = 10 * time.Second
			c.MaxAgeVariance = 0
		}), l, nil)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(25 * time.Second)
		synctest.Wait()
		want := []string{"spawn 1001@0s", "spawn 1002@10s", "signal 1001 15@10s", "spawn 1003@20s", "signal 1002 15@20s"}
		if got := l.events(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("events = %v, want %v", got, want)
		}
		if got := state(t, w); got != Active {
			t.Errorf("state = %v, want active", got)
		}
	})
}

// warmup_delay paces the initial spawns; respawns after a crash are
// immediate and do not count as flapping below the limit.
func TestWarmupDelayAndImmediateRespawn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{start: time.Now()}
		w := runWatcher(t, testWatcher(func(c *config.Watcher) {
			c.NumProcesses = 3
			c.WarmupDelay = 2 * time.Second
		}), l, nil)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(l.start); got != 4*time.Second {
			t.Errorf("Start returned after %s, want 4s (3 spawns, 2s apart)", got)
		}
		_, procs, _ := w.Info(context.Background())
		p := procs[0].Pid
		w.exitc <- exitStatus{pid: p, status: unix.WaitStatus(syscall.SIGSEGV)}
		synctest.Wait()
		evs := l.events()
		if last := evs[len(evs)-1]; last != "spawn 1004@4s" {
			t.Errorf("last event = %q, want an immediate respawn %q", last, "spawn 1004@4s")
		}
	})
}

// Many workers dying at once (an OOM kill, a pkill) is not a crash loop:
// deaths are counted per slot.
func TestFlappingCountsPerSlot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now()}
		ev := &eventLog{}
		w := runWatcher(t, testWatcher(func(c *config.Watcher) { c.NumProcesses = 5 }), l, ev)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		// Twice, every worker killed at once: 10 deaths, 2 per slot.
		for range 2 {
			_, procs, _ := w.Info(context.Background())
			for _, p := range procs {
				w.exitc <- exitStatus{pid: p.Pid, status: unix.WaitStatus(syscall.SIGKILL)}
			}
			synctest.Wait()
		}
		if got := state(t, w); got != Active {
			t.Errorf("state after 2 mass kills = %v, want active (3 deaths per slot flap)", got)
		}
		// A third death of one slot within the window trips the limit.
		_, procs, _ := w.Info(context.Background())
		for _, p := range procs {
			if p.Wid == 1 {
				w.exitc <- exitStatus{pid: p.Pid, status: unix.WaitStatus(1 << 8)}
			}
		}
		synctest.Wait()
		if got := state(t, w); got != Stopped || ev.count(pubsub.Flapping) != 1 {
			t.Errorf("state after slot 1 died 3 times = %v with %d flapping events, want stopped and 1", got, ev.count(pubsub.Flapping))
		}
	})
}

// A graceful reload starts every replacement before any old worker is
// signalled; a sequential one replaces them one at a time, warmup_delay
// apart, each replacement before its old worker.
func TestReloadOrder(t *testing.T) {
	tests := []struct {
		name       string
		sequential bool
		want       []string
	}{
		{"graceful", false, []string{
			"spawn 1003@0s", "spawn 1004@0s", "signal 1001 15@0s", "signal 1002 15@0s"}},
		{"sequential", true, []string{
			"spawn 1003@0s", "signal 1001 15@0s", "spawn 1004@1s", "signal 1002 15@1s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}}
				ev := &eventLog{}
				w := runWatcher(t, testWatcher(func(c *config.Watcher) {
					c.NumProcesses = 2
					c.WarmupDelay = time.Second
				}), l, ev)
				if err := w.Start(context.Background()); err != nil {
					t.Fatal(err)
				}
				l.mu.Lock()
				l.start, l.log = time.Now(), nil
				l.mu.Unlock()
				if err := w.Reload(context.Background(), tt.sequential); err != nil {
					t.Fatal(err)
				}
				if got := l.events(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Errorf("events = %v\nwant %v", got, tt.want)
				}
				if ev.count(pubsub.Reload) != 1 {
					t.Errorf("reload events = %d, want 1", ev.count(pubsub.Reload))
				}
				if st, procs, _ := w.Info(context.Background()); st != Active || len(procs) != 2 {
					t.Errorf("after the reload: %v with %d workers, want active with 2", st, len(procs))
				}
			})
		})
	}
}

// Incr returns once the pool has its new size: spawned when growing,
// reaped when shrinking (the oldest go first).
func TestIncrDecr(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := &fakeLauncher{dieOn: map[syscall.Signal]bool{syscall.SIGTERM: true}, start: time.Now()}
		w := runWatcher(t, testWatcher(nil), l, nil)
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Incr(context.Background(), 2); err != nil || n != 3 {
			t.Fatalf("Incr(2) = %d, %v; want 3", n, err)
		}
		if _, procs, _ := w.Info(context.Background()); len(procs) != 3 {
			t.Errorf("after Incr(2): %d workers, want 3", len(procs))
		}
		if n, err := w.Incr(context.Background(), -5); err != nil || n != 0 {
			t.Fatalf("Incr(-5) = %d, %v; want 0 (never below)", n, err)
		}
		if _, procs, _ := w.Info(context.Background()); len(procs) != 0 {
			t.Errorf("after Incr(-5): %d workers, want 0", len(procs))
		}
		if got, want := l.events()[3], "signal 1001 15@0s"; got != want {
			t.Errorf("first worker stopped by the decrement: %q, want the oldest, %q", got, want)
		}
		// A stopped watcher keeps the size for its next start.
		if err := w.Stop(context.Background()); err != nil {
			t.Fatal(err)
		}
		if n, err := w.Incr(context.Background(), 2); err != nil || n != 2 {
			t.Fatalf("Incr(2) on a stopped watcher = %d, %v; want 2", n, err)
		}
		if err := w.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, procs, _ := w.Info(context.Background()); len(procs) != 2 {
			t.Errorf("started after Incr(2) while stopped: %d workers, want 2", len(procs))
		}
	})
}
