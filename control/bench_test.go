package control

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
)

// BenchmarkListRoundTrip measures one client's sequential list calls, Go
// Client to Server over loopback TCP; it reports the median and p99.
func BenchmarkListRoundTrip(b *testing.B) {
	s := serve(b, newTestHandler(), ServerOptions{Logger: discardLogger()})
	c := dial(b, s.Addr())
	ctx := context.Background()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		if _, err := c.Call(ctx, "list", nil); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkTenClients measures throughput: 10 clients, each calling list
// sequentially; it reports commands per second.
func BenchmarkTenClients(b *testing.B) {
	s := serve(b, newTestHandler(), ServerOptions{Logger: discardLogger()})
	clients := make([]*Client, 10)
	for i := range clients {
		clients[i] = dial(b, s.Addr())
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

// BenchmarkDialRoundTrip is what circusctl costs the arbiter: a new
// connection per command (dial, handshake, status, close), over loopback
// tcp and ipc, with and without identifying the peer (access.Identify:
// sock_diag on tcp, SO_PEERCRED on ipc) as the arbiter does. It reports
// the median and p99 of each.
func BenchmarkDialRoundTrip(b *testing.B) {
	for _, kind := range []string{"tcp", "ipc"} {
		for _, identify := range []bool{false, true} {
			name := kind + "/none"
			opts := ServerOptions{Logger: discardLogger()}
			if identify {
				name = kind + "/identify"
				opts.Identify = access.Identify
			}
			b.Run(name, func(b *testing.B) {
				endpoint := "tcp://127.0.0.1:0"
				if kind == "ipc" {
					endpoint = "ipc://" + filepath.Join(b.TempDir(), "c.sock")
				}
				s, err := Listen(endpoint, newTestHandler(), opts)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Close() })
				ctx := context.Background()
				lat := make([]time.Duration, 0, b.N)
				for b.Loop() {
					start := time.Now()
					c, err := Dial(s.Addr(), 5*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.Call(ctx, "status", nil); err != nil {
						b.Fatal(err)
					}
					c.Close()
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "median-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}
