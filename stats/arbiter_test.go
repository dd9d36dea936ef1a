package stats

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// runArbiter runs an arbiter on ini until the test ends. The arbiter reaps
// every child of the test process while it runs, so tests using it must
// not run in parallel with tests that start children of their own.
func runArbiter(t *testing.T, ini string) *arbiter.Arbiter {
	t.Helper()
	cfg := arbtest.LoadINI(t, "", ini)
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("arbiter.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("arbiter Run: %v", err)
		}
		for _, s := range a.Sockets() {
			s.Close()
		}
	})
	select {
	case <-a.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start within 30s")
	}
	return a
}

const arbiterINI = `
[watcher:Web Srv]
cmd = sleep 100
numprocesses = 2
use_sockets = true

[socket:web]
host = 127.0.0.1
port = 0

[socket:rp]
host = 127.0.0.1
port = 0
so_reuseport = true
`

func TestFromArbiter(t *testing.T) {
	a := runArbiter(t, arbiterINI)
	src := FromArbiter(a)
	s := newSampler(t)
	var snap *Snapshot
	waitFor(t, "two workers", 10*time.Second, func() bool {
		var err error
		snap, err = s.Collect(t.Context(), src, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(snap.Watchers) != 1 || len(snap.Watchers[0].Procs) != 2 {
			return false
		}
		// A worker sampled between fork and exec has no argv yet.
		for _, p := range snap.Watchers[0].Procs {
			if p.Cmdline != "sleep" {
				return false
			}
		}
		return true
	})
	w := snap.Watchers[0]
	if w.Name != "Web Srv" {
		t.Errorf("watcher name = %q", w.Name)
	}
	for i, p := range w.Procs {
		if p.Wid != i+1 || p.Started.IsZero() || p.Cmdline != "sleep" || p.Age < 0 || p.Age > 30 {
			t.Errorf("worker %d = %+v", i, p)
		}
	}
	if len(snap.Arbiter.Children) < 2 {
		t.Errorf("arbiter children = %d, want at least the 2 workers", len(snap.Arbiter.Children))
	}
	if len(snap.Sockets) != 2 {
		t.Fatalf("sockets = %+v, want 2", snap.Sockets)
	}
	for i, sk := range a.Sockets() {
		got := snap.Sockets[i]
		if got.Name != sk.Name() || got.Address != sk.Addr() || got.FD < 3 {
			t.Errorf("socket %d = %+v, want %s at %s with an fd", i, got, sk.Name(), sk.Addr())
		}
		if link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(got.FD)); err != nil || link[:7] != "socket:" {
			t.Errorf("socket %s: fd %d is %q, %v", got.Name, got.FD, link, err)
		}
	}
	if snap.Sockets[0].FD == snap.Sockets[1].FD {
		t.Errorf("both sockets on fd %d", snap.Sockets[0].FD)
	}
}

// TestSink publishes an arbiter's stats on a real pubsub Sink and reads
// them with a ZeroMQ SUB subscribed to "stat.": stat.<watcher> arrives
// once a second.
func TestSink(t *testing.T) {
	a := runArbiter(t, arbiterINI)
	sink, err := zmqpub.Listen("tcp://127.0.0.1:0", zmqpub.SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	p, err := New(FromArbiter(a), sink, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()

	subCtx, subCancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer subCancel()
	sub, err := zmqpub.Dial(subCtx, sink.Addr(), "stat.")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var at []time.Time
	seen := map[string]bool{}
	for len(at) < 3 {
		topic, body, err := sub.Recv()
		if err != nil {
			t.Fatalf("Recv: %v", err)
		}
		seen[topic] = true
		if topic != "stat.web srv" {
			continue
		}
		at = append(at, time.Now())
		var agg struct {
			Pid []int
			CPU float64
		}
		if err := json.Unmarshal(body, &agg); err != nil {
			t.Fatalf("%s: %v in %s", topic, err, body)
		}
		if len(agg.Pid) > 2 {
			t.Errorf("%s: %s, want at most 2 pids", topic, body)
		}
	}
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < 700*time.Millisecond || d > 1300*time.Millisecond {
			t.Errorf("stat.web srv %d came %v after the one before, want about 1s", i, d)
		}
	}
	for _, prefix := range []string{"stat.web srv.", "stat.circus.", "stat.circus", "stat.sockets.", "stat.sockets"} {
		found := false
		for topic := range seen {
			found = found || strings.HasPrefix(topic, prefix)
		}
		if !found {
			t.Errorf("no %s* topic among %v", prefix, seen)
		}
	}
}
