package zmqpub

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// lockedBuffer is a log destination the test reads while the Relay writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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
	var logged lockedBuffer
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
