package zmqpub

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// A Relay forwards the Bus to every subscriber, reports the events a stuck
// one loses, and Close closes the Sink.
func TestRelay(t *testing.T) {
	t.Parallel()
	s, err := Listen("tcp://127.0.0.1:0", SinkOptions{QueueSize: 1, SendBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	stuckSub(t, s.Addr())
	waitSubscribed(t, s, 1, 1)
	var logged testproc.Buffer
	b := pubsub.NewBus()
	r := NewRelay(b, s, RelayOptions{ReportEvery: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	pad := strings.Repeat("x", 1000)
	testproc.WaitFor(t, "a drop report", 10*time.Second, func() bool {
		b.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "web", Reason: pad})
		return strings.Contains(logged.String(), "events dropped for slow subscribers")
	})
	if err := r.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	again, err := Listen(s.Addr(), SinkOptions{})
	if err != nil {
		t.Fatalf("Listen on the Relay's endpoint after Close = %v, want it free", err)
	}
	again.Close()
}

// Flush reports whether every event published went out: true once a
// subscriber that reads has been handed them all (it then receives the
// last one), false while one that stopped reading still holds them queued.
func TestRelayFlush(t *testing.T) {
	t.Parallel()
	s, err := Listen("tcp://127.0.0.1:0", SinkOptions{QueueSize: 1 << 14, SendBuffer: 4096})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Dial(context.Background(), s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitSubscribed(t, s, 1, 1)
	b := pubsub.NewBus()
	r := NewRelay(b, s, RelayOptions{})
	defer r.Close()
	for range 100 {
		b.Publish(pubsub.Event{Kind: pubsub.Start, Watcher: "web"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if !r.Flush(ctx) {
		t.Fatal("Flush with a reading subscriber = false")
	}
	for i := 1; i <= 100; i++ {
		_, body, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if i == 100 && !strings.Contains(string(body), `"seq": 100`) {
			t.Errorf("last event %s, want seq 100", body)
		}
	}

	stuckSub(t, s.Addr())
	waitSubscribed(t, s, 2, 1)
	pad := strings.Repeat("x", 1000)
	for range 2000 {
		b.Publish(pubsub.Event{Kind: pubsub.Flapping, Watcher: "web", Reason: pad})
	}
	sctx, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	if r.Flush(sctx) {
		t.Error("Flush with a subscriber that stopped reading = true")
	}
}

// A Relay told to await a subscriber holds the events published before
// it subscribed, and hands them all over once it has: the first events of
// an arbiter upgraded in place reach the subscribers its old image had.
func TestRelayAwait(t *testing.T) {
	t.Parallel()
	s, err := Listen("tcp://127.0.0.1:0", SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b := pubsub.NewBus()
	r := NewRelay(b, s, RelayOptions{Await: 1, AwaitMax: time.Minute})
	defer r.Close()
	for range 10 {
		b.Publish(pubsub.Event{Kind: pubsub.Start, Watcher: "web"})
	}
	c, err := Dial(context.Background(), s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 1; i <= 10; i++ {
		_, body, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`"seq": %d}`, i); !strings.HasSuffix(string(body), want) {
			t.Fatalf("event %d: %s, want it to end with %s", i, body, want)
		}
	}
}
