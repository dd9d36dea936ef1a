package metrics

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sys/unix"
)

// BenchmarkScrape measures one scrape of /metrics through its handler,
// with 1000 real sleeping workers (in 4 watchers) and 4 sockets, against
// the floor: a registry with only the Go and process collectors, what any
// Go program's /metrics costs. Besides ns/op (latency) and B/op, it
// reports the body's size and the cpu time a scrape costs this process,
// and what that is as a share of one core at one scrape every 5 s.
//
//	go test -run '^$' -bench Scrape -benchtime 200x ./metrics
func BenchmarkScrape(b *testing.B) {
	b.Run("floor", func(b *testing.B) {
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		benchScrape(b, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	})
	b.Run("1000-workers", func(b *testing.B) {
		ini := ""
		for i := range 4 {
			n := strconv.Itoa(i)
			ini += "[watcher:pool" + n + "]\ncmd = sleep 3600\nnumprocesses = 250\n" +
				"[socket:s" + n + "]\nhost = 127.0.0.1\nport = 0\n"
		}
		a, _ := runArbiter(b, ini)
		ep, err := New(Options{Arbiter: a, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			b.Fatal(err)
		}
		defer ep.Close()
		n := 0
		for _, w := range a.Watchers() {
			st, err := w.Status(b.Context())
			if err != nil {
				b.Fatal(err)
			}
			n += len(st.Procs)
		}
		if n != 1000 {
			b.Fatalf("%d workers, want 1000", n)
		}
		benchScrape(b, ep.Metrics)
	})
}

func benchScrape(b *testing.B, h http.Handler) {
	b.ReportAllocs()
	var size int64
	cpu0 := cpuTime(b)
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		if rec.Code != http.StatusOK {
			b.Fatalf("GET /metrics = %d", rec.Code)
		}
		size, _ = io.Copy(io.Discard, rec.Body)
	}
	cpu := (cpuTime(b) - cpu0) / time.Duration(b.N)
	b.ReportMetric(float64(size), "body-bytes")
	b.ReportMetric(float64(cpu.Microseconds())/1000, "cpu-ms/scrape")
	b.ReportMetric(cpu.Seconds()/5*100, "%core@5s")
}

// cpuTime is the user and system time this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
