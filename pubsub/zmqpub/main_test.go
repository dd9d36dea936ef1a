package zmqpub

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

func TestMain(m *testing.M) {
	// zmq4 v0.17.0's own SUB (a test peer here, not used by the Sink) can
	// leave its reader blocked on a channel send after Close when a message
	// was in flight (msgio.go:110, qreader.listen).
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*qreader).listen"))
}

const systemPython = testproc.SystemPython

// at is the time every test event carries.
var at = time.Unix(1795464673, 793150000)

var (
	pyzmq     = testproc.HavePyzmq
	needPyzmq = testproc.NeedPyzmq
)

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
	testproc.WaitFor(t, "subscribers", 10*time.Second, func() bool {
		got := 0
		for _, p := range s.Stats().Peers {
			if len(p.Subscriptions) >= want {
				got++
			}
		}
		return got >= n
	})
}

func splitLines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

// testLogger logs to the test's output, shown only when it fails.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}
