package commands

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/logs"
)

// BenchmarkLogsReply is one follower's reply at 10,000 lines a second from
// 10 watchers polled twice a second: 500 lines of each, merged, rendered
// as the wire carries them. The figure to read is ns per line.
func BenchmarkLogsReply(b *testing.B) {
	const sources, per = 10, 500
	t0 := time.Now()
	r := &logsRequest{follow: true, after: map[string]uint64{}}
	for s := range sources {
		var lines []logs.Line
		for i := range per {
			lines = append(lines, logs.Line{Seq: uint64(i + 1), Pid: 1000 + s, Time: t0.Add(time.Duration(i) * 2 * time.Millisecond),
				Data: fmt.Appendf(nil, "%09d %s", i, strings.Repeat("x", 89))})
		}
		r.sources = append(r.sources, logSource{watcher: fmt.Sprintf("w%02d", s),
			follow: func(uint64, time.Time, int) logs.Page { return logs.Page{Lines: lines, Next: per} }})
	}
	b.ReportAllocs()
	for b.Loop() {
		rep := r.run()
		if _, err := rep.Render([]byte(`"0123456789abcdef"`), t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sources*per), "ns/line")
}
