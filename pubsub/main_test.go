package pubsub

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// zmq4 v0.17.0's own SUB (a test peer here, not used by the Sink) can
	// leave its reader blocked on a channel send after Close when a message
	// was in flight (msgio.go:110, qreader.listen).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*qreader).listen"))
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

const systemPython = "/usr/bin/python3"

var pyzmq = sync.OnceValue(func() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, systemPython, "-c", "import zmq").Run() == nil
})

// needPyzmq skips a test that needs Debian's python3-zmq, unless CI=true, where
// its absence is a failure.
func needPyzmq(t *testing.T) {
	t.Helper()
	if pyzmq() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s cannot import zmq; install python3-zmq", systemPython)
	}
	t.Skipf("%s cannot import zmq (python3-zmq not installed)", systemPython)
}

// listen opens a Sink on a loopback port and closes it with the test.
func listen(t testing.TB, opts SinkOptions) *Sink {
	t.Helper()
	s, err := Listen("tcp://127.0.0.1:0", opts)
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// waitSubscribed waits until n peers have each subscribed to want prefixes.
func waitSubscribed(t testing.TB, s *Sink, n, want int) {
	t.Helper()
	waitFor(t, 10*time.Second, "subscribers", func() bool {
		got := 0
		for _, p := range s.Stats().Peers {
			if len(p.Subscriptions) >= want {
				got++
			}
		}
		return got >= n
	})
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func splitLines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// testLogger logs to the test's output, shown only when it fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
