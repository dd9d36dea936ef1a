package e2e

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

var worker string

func TestMain(m *testing.M) {
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	dir, err := os.MkdirTemp("", "e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if worker, err = testproc.Build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		code := m.Run()
		// zmq4's SUB (our Client) can leave its reader blocked after Close
		// when a message was in flight (msgio.go:110); os/signal's loop
		// outlives any test once SIGCHLD was watched.
		if err := goleak.Find(goleak.IgnoreAnyFunction("github.com/go-zeromq/zmq4.(*qreader).listen"),
			goleak.IgnoreTopFunction("os/signal.signal_recv"), goleak.IgnoreAnyFunction("os/signal.loop")); code == 0 && err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			return 1
		}
		return code
	}()
	os.Exit(code)
}

// stream is an arbiter publishing to a PUB sink on a free loopback port.
type stream struct {
	a    *arbiter.Arbiter
	bus  *pubsub.Bus
	sink *zmqpub.Sink
}

// runStream starts an arbiter on ini (WORKER replaced by testworker) whose
// events go to a sink, until the test ends.
func runStream(t testing.TB, ini string, opts zmqpub.SinkOptions) *stream {
	t.Helper()
	cfg, err := config.Parse("e2e.ini", []byte(strings.ReplaceAll(ini, "WORKER", worker)))
	if err != nil {
		t.Fatal(err)
	}
	sink, err := zmqpub.Listen("tcp://127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	bus := pubsub.NewBus()
	sub := bus.Subscribe(16384)
	fwdDone := make(chan struct{})
	go func() {
		defer close(fwdDone)
		_ = zmqpub.Forward(context.Background(), sub, sink)
	}()
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.DiscardHandler), Publisher: bus})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() {
		defer close(runDone)
		_ = a.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-runDone
		sub.Close()
		<-fwdDone
		sink.Close()
	})
	select {
	case <-a.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start")
	}
	return &stream{a: a, bus: bus, sink: sink}
}

// pids returns the live workers of a watcher.
func (s *stream) pids(t testing.TB, name string) []int {
	t.Helper()
	_, procs, err := s.a.Watcher(name).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range procs {
		if !p.Stopping {
			out = append(out, p.Pid)
		}
	}
	return out
}
