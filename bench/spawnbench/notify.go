package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// ready is one READY datagram: which worker, and when it arrived.
type ready struct {
	pid int
	at  time.Time
}

// notifier is the receiving end of the workers' sd_notify-style READY
// datagrams: one unixgram socket, and one goroutine that reads it, stamps
// each datagram with its arrival time and hands it on through c. Each
// phase of the benchmark gets a fresh notifier, so no late datagram of one
// phase is counted in the next.
type notifier struct {
	path string
	conn *net.UnixConn
	c    chan ready
	quit chan struct{}
	done chan struct{}
	// seen is every pid that has reported; owned by the goroutine that
	// consumes c.
	seen map[int]bool
}

func newNotifier(path string) (*notifier, error) {
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("listen notify socket: %w", err)
	}
	// 100 workers may report at the same moment; the default queue of a
	// unix datagram socket is small, and a full one makes senders wait.
	_ = conn.SetReadBuffer(4 << 20)
	n := &notifier{
		path: path,
		conn: conn,
		c:    make(chan ready, 1024),
		quit: make(chan struct{}),
		done: make(chan struct{}),
		seen: map[int]bool{},
	}
	go n.read()
	return n, nil
}

func (n *notifier) read() {
	defer close(n.done)
	buf := make([]byte, 512)
	for {
		m, err := n.conn.Read(buf)
		at := time.Now()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				fmt.Fprintf(os.Stderr, "spawnbench: read notify socket: %v\n", err)
			}
			return
		}
		pid, ok := parseReady(string(buf[:m]))
		if !ok {
			fmt.Fprintf(os.Stderr, "spawnbench: ignoring notification %q\n", buf[:m])
			continue
		}
		select {
		case n.c <- ready{pid: pid, at: at}:
		case <-n.quit:
			return
		}
	}
}

// parseReady reads "READY=1\nMAINPID=<pid>".
func parseReady(msg string) (int, bool) {
	isReady, pid := false, 0
	for line := range strings.Lines(msg) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), "=")
		switch k {
		case "READY":
			isReady = v == "1"
		case "MAINPID":
			pid, _ = strconv.Atoi(v)
		}
	}
	return pid, isReady && pid > 0
}

// next waits for the next READY from a pid not seen before.
func (n *notifier) next(ctx context.Context, timeout time.Duration) (ready, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case r := <-n.c:
			if n.seen[r.pid] {
				continue
			}
			n.seen[r.pid] = true
			return r, nil
		case <-t.C:
			return ready{}, fmt.Errorf("no new worker reported ready within %v (%d seen so far)", timeout, len(n.seen))
		case <-ctx.Done():
			return ready{}, ctx.Err()
		}
	}
}

// waitN waits until k more distinct pids have reported and returns the
// arrival time of the last of them.
func (n *notifier) waitN(ctx context.Context, k int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last time.Time
	for i := range k {
		r, err := n.next(ctx, time.Until(deadline))
		if err != nil {
			return last, fmt.Errorf("%d of %d workers ready: %w", i, k, err)
		}
		last = r.at
	}
	return last, nil
}

// Close stops the reader, waits for it and removes the socket file.
func (n *notifier) Close() error {
	close(n.quit)
	err := n.conn.Close() // also unlinks path
	<-n.done
	if rmErr := os.Remove(n.path); rmErr != nil && !errors.Is(rmErr, os.ErrNotExist) {
		err = errors.Join(err, rmErr)
	}
	return err
}
