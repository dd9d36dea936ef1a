package zmqpub

import (
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
