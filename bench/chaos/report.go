package main

import (
	"fmt"
	"os"
	"text/tabwriter"
	"time"
)

// quietPoint is what one quiet point measured.
type quietPoint struct {
	name       string
	converged  time.Duration // the counts matched the model after the chaos
	normalized time.Duration // every watcher back at its base size
	res        resources
}

// report prints the run's figures.
func report(r *run, o options, points []quietPoint, z *zombies, l *load, took time.Duration, exited bool) {
	w := os.Stdout
	fmt.Fprintf(w, "\n== chaos figures (seed %d, %d watchers, %v of chaos, load average %s) ==\n", o.seed, o.watchers, o.duration, loadAverage())
	fmt.Fprintf(w, "operations: %s\n", r.ops.String())
	fmt.Fprintf(w, "SIGKILLs by watcher: %s\n", r.kills.String())

	fmt.Fprintf(w, "\ncommand latencies (bound %v):\n", o.bound)
	r.lat.write(w)
	if e := r.expected.String(); e != "" {
		fmt.Fprintf(w, "errors above that the killer caused (a new worker SIGKILLed before it was ready: the reload is abandoned, as documented): %s\n", e)
	}

	fmt.Fprintln(w, "\nquiet points (arbiter resources at base sizes):")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "point\tat\tconverged in\tto base in\tworkers\tfds\tthreads\tRSS kB\t")
	var worst time.Duration
	for _, q := range points {
		fmt.Fprintf(tw, "%s\t%.0fs\t%v\t%v\t%d\t%d\t%d\t%d\t\n", q.name, q.res.at.Seconds(),
			round(q.converged), round(q.normalized), q.res.workers, q.res.fds, q.res.threads, q.res.rssKB)
		worst = max(worst, q.converged, q.normalized)
	}
	tw.Flush()
	if len(points) >= 3 {
		e, l := points[1].res, points[len(points)-1].res
		fmt.Fprintf(w, "growth from the first to the last point after chaos: fds %+d (tolerance +%d), threads %+d (+%d), RSS %+d kB (%+.0f%%)\n",
			l.fds-e.fds, fdSlack, l.threads-e.threads, threadSlack, l.rssKB-e.rssKB, 100*float64(l.rssKB-e.rssKB)/float64(e.rssKB))
	}
	fmt.Fprintf(w, "slowest convergence: %v (bound %v)\n", round(worst), convergeIn)

	z.mu.Lock()
	fmt.Fprintf(w, "zombies of the arbiter: at most %d at once, the longest-lived seen for %v (grace %v)\n", z.most, z.longest, zombieGrace)
	z.mu.Unlock()

	if o.load > 0 {
		l.mu.Lock()
		for i, phase := range []string{"during chaos", "at quiet points"} {
			ok, failed := l.ok[i].Load(), l.failed[i].Load()
			fmt.Fprintf(w, "HTTP %s: %d ok, %d failed", phase, ok, failed)
			if failed > 0 {
				fmt.Fprintf(w, " (first: %s)", l.firstFailure[i])
			}
			fmt.Fprintln(w)
		}
		l.mu.Unlock()
	}

	n, first := r.a.Warnings()
	fmt.Fprintf(w, "arbiter log: %d WARN/ERROR lines", n)
	if n > 0 {
		fmt.Fprintf(w, "; the first: %s", first)
	}
	fmt.Fprintln(w)
	bound := maxGraceful(r.specs) + 10*time.Second
	if exited {
		fmt.Fprintf(w, "SIGTERM to exit: %v (bound %v), exit status %v\n", round(took), bound, exitStatus(r.a))
	} else if r.a.Exited() {
		fmt.Fprintf(w, "SIGTERM to exit: none, the arbiter had died (%s)\n", exitStatus(r.a))
	} else {
		fmt.Fprintf(w, "SIGTERM to exit: still running after %v\n", bound)
	}
}

func exitStatus(a *arbiterProc) string {
	if a.err != nil {
		return a.err.Error()
	}
	return "0"
}

// loadAverage is the machine's 1-minute load average, "?" if unknown:
// other work on the machine shows in the latencies.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	var f string
	fmt.Sscan(string(b), &f)
	return f
}
