package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/sdnotify"
)

// A watcher loop that stops answering withholds the watchdog ping, so that
// systemd restarts an arbiter that can no longer supervise; pings resume
// when it answers again. A hung loop cannot be made on demand, hence the
// stand-in probe.
func TestWatchdogWithheldWhileALoopHangs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	n, err := sdnotify.New(path)
	if err != nil {
		t.Fatal(err)
	}
	const hung = 3
	var probes atomic.Int32
	s := &service{
		n: n, watchdog: 40 * time.Millisecond, refresh: make(chan struct{}, 1),
		log: slog.New(slog.NewTextHandler(t.Output(), nil)),
		probe: func(ctx context.Context, timeout time.Duration) (string, error) {
			if probes.Add(1) <= hung {
				// What a loop that does not answer looks like: the
				// probe's deadline passes.
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				<-ctx.Done()
				return "", errors.New("watcher w: " + ctx.Err().Error())
			}
			return "1 watcher: 1 active; 1 worker", nil
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.loop(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	buf := make([]byte, 512)
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		t.Fatal(err)
	}
	k, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if msg := string(buf[:k]); !strings.HasPrefix(msg, "WATCHDOG=1\n") {
		t.Fatalf("first message = %q, want WATCHDOG=1 and the status", msg)
	}
	if got := probes.Load(); got <= hung {
		t.Errorf("WATCHDOG=1 sent after %d probes, %d of which hung; want it only once one answered", got, hung)
	}
}
