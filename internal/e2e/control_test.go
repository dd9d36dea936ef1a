package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// serveControl serves the command table of an arbiter with 3 watchers of
// 2 workers on a loopback control endpoint until the test ends.
func serveControl(b *testing.B) *control.Server {
	s := runStream(b, "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 2\n[watcher:b]\ncmd = WORKER sleep\nnumprocesses = 2\n"+
		"[watcher:c]\ncmd = WORKER sleep\nnumprocesses = 2\n", zmqpub.SinkOptions{})
	table, err := commands.New(s.a, commands.Options{})
	if err != nil {
		b.Fatal(err)
	}
	srv, err := control.Listen("tcp://127.0.0.1:0", table, control.ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		srv.Close()
		table.Close()
	})
	return srv
}

// BenchmarkControlList is the round trip of `list` and of `status NAME`
// (which asks the watcher's loop) through the real command table of a
// running arbiter; it reports the median and p99.
func BenchmarkControlList(b *testing.B) {
	srv := serveControl(b)
	c, err := control.Dial(srv.Addr(), 5*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for _, bc := range []struct {
		name  string
		cmd   string
		props map[string]any
	}{{"list", "list", nil}, {"status", "status", map[string]any{"name": "b"}}} {
		b.Run(bc.name, func(b *testing.B) {
			lat := make([]time.Duration, 0, b.N)
			for b.Loop() {
				start := time.Now()
				if _, err := c.Call(ctx, bc.cmd, bc.props); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}

// BenchmarkControlTenClients is the throughput of `list` from 10 clients
// at once through the real command table, in commands per second.
func BenchmarkControlTenClients(b *testing.B) {
	srv := serveControl(b)
	clients := make([]*control.Client, 10)
	for i := range clients {
		c, err := control.Dial(srv.Addr(), 5*time.Second)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i, c := range clients {
		n := b.N / 10
		if i < b.N%10 {
			n++
		}
		wg.Go(func() {
			for range n {
				if _, err := c.Call(ctx, "list", nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "cmds/s")
}
