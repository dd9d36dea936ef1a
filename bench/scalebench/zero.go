package main

import (
	"fmt"
	"slices"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// zero times a first request to a pool that has scaled to zero: from the
// connect to the answer, less the 100 ms of work, over a TCP and a unix
// socket, -rounds × 5 times each.
func (b *bench) zero() error {
	fmt.Printf("zero: a request to a pool of 0 (autoscale.min 0), answered once a worker has started; time from connect to answer, less the %s of work\n", work)
	fmt.Printf("%-8s %6s %9s %9s %9s %7s\n", "socket", "tries", "min", "median", "max", "failed")
	for _, c := range []struct{ name, network, socket string }{
		{"tcp", "tcp", "host = 127.0.0.1\nport = 0"},
		{"unix", "unix", "path = DIR/web.sock"},
	} {
		p, err := b.start(fmt.Sprintf(`
[socket:web]
%s

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 100ms
numprocesses = 0
autoscale.min = 0
autoscale.max = 4
autoscale.idle = 0.3
autoscale.down_interval = 0.1
close_child_stdout = true
`, c.socket), 0)
		if err != nil {
			return err
		}
		var took []time.Duration
		failed := 0
		for range b.o.rounds * 5 {
			if err := poll(30*time.Second, func() bool { return p.live() == 0 }); err != nil {
				p.stop()
				return fmt.Errorf("the pool did not empty: %w", err)
			}
			time.Sleep(rand100())
			t0 := time.Now()
			if _, err := testproc.AskSerial(c.network, p.addr); err != nil {
				failed++
				continue
			}
			took = append(took, time.Since(t0)-work)
		}
		p.stop()
		slices.Sort(took)
		fmt.Printf("%-8s %6d %9s %9s %9s %7d\n", c.name, len(took)+failed, ms(took[0]), ms(took[len(took)/2]), ms(took[len(took)-1]), failed)
	}
	fmt.Println()
	return nil
}
