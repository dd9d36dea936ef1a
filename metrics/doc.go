// Package metrics serves the arbiter's operations endpoints: Prometheus's
// /metrics, and the /healthz and /readyz probes that container engines and
// orchestrators ask. They are plain http.Handlers; cmd/arbiter mounts them
// on the console's listener (behind its authentication) and, with [circus]
// metrics = true, on a listener of their own.
//
// # Metrics
//
// A custom prometheus.Collector reads the arbiter when it is scraped and at
// no other time: nothing runs between scrapes. It asks every watcher's loop
// for its status at once, under one deadline (1 s), so that stuck loops
// cost a scrape at most that long and show as ringmaster_watcher_up 0; reads
// /proc/PID/stat once per worker, and the sockets' accept queues with one
// sock_diag dump per address family. The registry is the package's own, never
// Prometheus's global one; it also holds the Go runtime and process
// collectors of the arbiter itself.
//
// Cardinality is bounded by the configuration, not by the number of
// workers: worker figures are summed per watcher, and no label holds a pid,
// a wid or anything else a worker brings. A pool of 10,000 workers gives
// the same series as one of 1.
//
// ringmaster_worker_cpu_seconds_total must never go down, though workers
// come and go: the collector remembers each worker's cpu time as last
// scraped, and when a worker is gone adds that to its watcher's total. The
// cpu a worker used between the last scrape that saw it and its exit is not
// counted.
//
// # Probes
//
// /healthz answers 200 when the arbiter's loops answer: every watcher's
// loop returns its status within the deadline (1 s). The loops are asked
// all at once, under one deadline, so that a probe answers within it
// however many are stuck, and names each. A loop that does not answer is
// a deadlock or a livelock, which restarting the arbiter is the cure for,
// so it is 503.
//
// /readyz answers 200 when the arbiter has finished starting and every
// autostart watcher has its target of workers ready (or its readyz_min, if
// fewer), and 503 otherwise. A stopped, stopping or flapping autostart
// watcher is not ready. The 503's body names each watcher that is not
// ready, with why.
//
// # Cost
//
// A scrape with 1,000 sleeping workers in 4 watchers takes 18-35 ms and
// 18-24 ms of cpu (0.4% of a core at one scrape every 5 s), allocates
// 590 KB and writes a 15 KB body; the Go and process collectors alone take
// 0.6-0.8 ms (BenchmarkScrape). Nearly all of it is the open, read and
// close of /proc/PID/stat per worker.
//
// # Concurrency
//
// The handlers are safe for concurrent use. Scrapes are served one at a
// time (one mutex around the collector's baselines and readers): a second
// scrape waits for the first, which is bounded by the deadlines.
package metrics
