package config

// checkCritical warns about critical = true on a watcher that can never
// give up, since nothing would then ever stop the arbiter for it: with
// max_retry = -1 failed spawns are retried for ever, and so are flapping
// stops with flapping off or flapping.max_retry = -1.
func (f *fields) checkCritical(w *Watcher) {
	if !w.Critical || w.MaxRetry >= 0 || (w.FlapAttempts > 0 && w.FlapMaxRetry >= 0) {
		return
	}
	f.warnf("critical", "never takes effect: with max_retry = -1 and flapping off or flapping.max_retry = -1 the watcher never gives up")
}
