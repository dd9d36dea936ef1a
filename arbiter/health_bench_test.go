package arbiter_test

import (
	"fmt"
	"syscall"
	"testing"
	"time"
)

// BenchmarkHealthCheck100 measures what checking 100 workers over HTTP
// once a second costs the arbiter: the CPU time of this process (the
// arbiter runs in it; the workers are other processes) over a 10 s window,
// with the checks and without, as % of one core. Run it with
//
//	go test -run '^$' -bench HealthCheck100 -benchtime 1x ./arbiter
//
// The target (issue 6) is under 2% of a core. "limits" is the cost of
// sampling the same 100 workers for limit.max_rss and limit.max_cpu once a
// second instead.
func BenchmarkHealthCheck100(b *testing.B) {
	for _, bc := range []struct{ name, keys string }{
		{"without", ""},
		{"with", "health.url = http://127.0.0.1:$(circus.sockets.web.port)/healthz\nhealth.interval = 1\nhealth.timeout = 1\n"},
		{"limits", "limit.max_rss = 1G\nlimit.max_cpu = 90\nlimit.interval = 1\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := start(b, fmt.Sprintf(`
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serve --fd $(circus.sockets.web)
numprocesses = 100
%s`, bc.keys))
			waitFor(b, "100 workers", 60*time.Second, func() bool { return len(r.pids(b, "web")) >= 100 })
			time.Sleep(2 * time.Second) // let the first round of checks start
			var pct float64
			for b.Loop() {
				start, t0 := cpuTime(b), time.Now()
				time.Sleep(10 * time.Second)
				pct = 100 * float64(cpuTime(b)-start) / float64(time.Since(t0))
			}
			b.ReportMetric(pct, "%cpu")
			if n := len(r.pids(b, "web")); n != 100 {
				b.Errorf("%d workers at the end, want 100 (none replaced)", n)
			}
		})
	}
}

// cpuTime is this process's user and system time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
