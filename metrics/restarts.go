package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringmaster-dev/ringmaster/arbiter"
)

var (
	descRestarts = prometheus.NewDesc("ringmaster_watcher_restarts_total",
		"Worker deaths the watcher replaced, by reason: exit (non-zero), signal, clean (exit 0), oom, unhealthy, limits, max_age. Deaths a stop, reload, decr or kill asked for are not counted.",
		[]string{"watcher", "reason"}, nil)
	descSince = prometheus.NewDesc("ringmaster_watcher_active_start_time_seconds",
		"When the watcher last became active, in seconds since the epoch; absent while it is not active.",
		[]string{"watcher"}, nil)
)

func describeRestarts(ch chan<- *prometheus.Desc) {
	ch <- descRestarts
	ch <- descSince
}

// collectRestarts sends every reason's counter, those still at 0 too: a
// series that appears only at the first death would hide that death from
// increase() and rate(), which need two samples.
func collectRestarts(ch chan<- prometheus.Metric, name string, st arbiter.Status) {
	for _, r := range arbiter.Reasons {
		ch <- prometheus.MustNewConstMetric(descRestarts, prometheus.CounterValue, float64(st.Restarts[r]), name, r)
	}
	if !st.Since.IsZero() {
		ch <- prometheus.MustNewConstMetric(descSince, prometheus.GaugeValue, float64(st.Since.UnixNano())/1e9, name)
	}
}
