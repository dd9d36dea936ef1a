package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets.
const (
	latencyTarget = 100 * time.Millisecond
	cpuTarget     = 3.0 // % of one core
)

// latencies are the window's event latencies of a page phase.
type latencies struct {
	events  int             // distinct events that happened in the window
	perPage []time.Duration // one per (event, page) that got it
	toAll   []time.Duration // per event got by every page: its last page's
	missing int             // (event, page) pairs never got
	kinds   map[string]int
}

func eventLatencies(ph phase) latencies {
	l := latencies{kinds: map[string]int{}}
	seen := make([]map[uint64]arrival, len(ph.pages))
	all := map[uint64]arrival{}
	for i, p := range ph.pages {
		seen[i] = p.seen()
		for seq, a := range seen[i] {
			if !a.at.Before(ph.t0) && !a.at.After(ph.t1) {
				all[seq] = a
			}
		}
	}
	l.events = len(all)
	for seq, ev := range all {
		l.kinds[ev.kind]++
		var last time.Duration
		complete := true
		for _, s := range seen {
			a, ok := s[seq]
			if !ok {
				l.missing++
				complete = false
				continue
			}
			d := a.got.Sub(a.at)
			l.perPage = append(l.perPage, d)
			last = max(last, d)
		}
		if complete {
			l.toAll = append(l.toAll, last)
		}
	}
	return l
}

// report prints the two phases side by side, then the page phase's
// latencies.
func report(out io.Writer, o options, base, pg phase, warnings int, firstWarning string) {
	lat := eventLatencies(pg)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }

	fmt.Fprintln(out)
	row("phase", "window", "kills", "arbiter CPU", "arbiter RSS", "webbench CPU", "kill reply, median / max", "load avg")
	for _, p := range []struct {
		name string
		ph   phase
	}{
		{"no pages (kills over ZeroMQ)", base},
		{fmt.Sprintf("%s (kills over WebSocket)", plural(o.clients, "page")), pg},
	} {
		replies := p.ph.replies
		row(p.name, p.ph.window.Round(100*time.Millisecond).String(), kills(p.ph),
			pct(p.ph.cpu), fmt.Sprintf("%.1f MB", float64(p.ph.rssKB)/1024), pct(p.ph.selfCPU),
			ms(median(replies))+" / "+ms(maxOf(replies)), p.ph.load)
	}
	tw.Flush()

	fmt.Fprintln(out)
	row("metric", "figure", "target", "verdict")
	row("arbiter CPU with "+plural(o.clients, "page"), pct(pg.cpu), fmt.Sprintf("< %.0f%%", cpuTarget), verdict(pg.cpu < cpuTarget))
	row("  of which the pages (minus no pages)", fmt.Sprintf("%+.2f%%", pg.cpu-base.cpu), "-", "info")
	if n := len(lat.toAll); n > 0 {
		under := 0
		for _, d := range lat.toAll {
			if d < latencyTarget {
				under++
			}
		}
		row(fmt.Sprintf("event to every page, max of %d events", n), ms(slices.Max(lat.toAll)),
			"< "+latencyTarget.String(), verdict(under == n && lat.missing == 0))
		row("  min / median / p99", ms(slices.Min(lat.toAll))+" / "+ms(median(lat.toAll))+" / "+ms(percentile(lat.toAll, 99)), "-", "info")
		row("  under 100 ms", fmt.Sprintf("%.1f%% (%d of %d)", 100*float64(under)/float64(n), under, n), "-", "info")
	} else {
		row("event to every page", "no event reached every page", "< "+latencyTarget.String(), verdict(false))
	}
	if n := len(lat.perPage); n > 0 {
		under := 0
		for _, d := range lat.perPage {
			if d < latencyTarget {
				under++
			}
		}
		row(fmt.Sprintf("event per page, %d events × %d pages", lat.events, len(pg.pages)),
			fmt.Sprintf("min %s / median %s / p99 %s / max %s", ms(slices.Min(lat.perPage)), ms(median(lat.perPage)),
				ms(percentile(lat.perPage, 99)), ms(slices.Max(lat.perPage))), "-", "info")
		row("  under 100 ms", fmt.Sprintf("%.1f%% (%d of %d)", 100*float64(under)/float64(n), under, n), "-", "info")
	}
	row("  (event, page) pairs missing", fmt.Sprint(lat.missing), "0", verdict(lat.missing == 0))
	row("  events by kind", kindList(lat.kinds), "-", "info")
	if d := pg.drv; d != nil {
		d.mu.Lock()
		row("kill → reply, median / p99", ms(median(d.replies))+" / "+ms(percentile(d.replies, 99)), "-", "info")
		row("kill → its reap event, median / p99", ms(median(d.toReap))+" / "+ms(percentile(d.toReap, 99)), "-", "info")
		row("kill → the replacement's spawn event, median / p99", ms(median(d.toSpawn))+" / "+ms(percentile(d.toSpawn, 99)), "-", "info")
		if d.failed > 0 {
			row("kill error replies", fmt.Sprintf("%d, the first: %s", d.failed, d.reason), "0", verdict(false))
		}
		d.mu.Unlock()
	}
	gaps, broken, cpus, firstErr := pageTotals(pg.pages)
	if n := len(pg.pages); n > 0 {
		secs := pg.window.Seconds()
		row("sent to each page in the window", fmt.Sprintf("%.1f messages/s, %.1f kB/s", float64(pg.messages)/float64(n)/secs,
			float64(pg.bytes)/float64(n)/secs/1000), "-", "info")
	}
	row("pages with a seq gap or an error", fmt.Sprintf("%d gaps, %d broken", gaps, broken), "0", verdict(gaps == 0 && broken == 0))
	if len(cpus) > 0 {
		row("arbiter cpu in the stats messages, mean", fmt.Sprintf("%.2f%% (%d samples)", mean(cpus), len(cpus)), "-", "info")
	}
	row("arbiter log lines at WARN or ERROR", fmt.Sprint(warnings), "-", "info")
	tw.Flush()
	// Long texts after the table, so as not to widen it.
	if firstErr != nil {
		fmt.Fprintf(out, "\nthe first page error: %v\n", firstErr)
	}
	if firstWarning != "" {
		fmt.Fprintf(out, "\nthe arbiter's first warning: %s\n", firstWarning)
	}
}

func kills(ph phase) string {
	if ph.skipped > 0 {
		return fmt.Sprintf("%d (%d ticks skipped)", ph.kills, ph.skipped)
	}
	return fmt.Sprint(ph.kills)
}

// pageTotals sums the pages' counters; cpus are the driving page's stats
// samples of the arbiter's cpu.
func pageTotals(pages []*page) (gaps, broken int, cpus []float64, firstErr error) {
	for i, p := range pages {
		p.mu.Lock()
		gaps += p.gaps
		if p.err != nil {
			broken++
			if firstErr == nil {
				firstErr = fmt.Errorf("page %d: %w", i+1, p.err)
			}
		}
		if i == 0 {
			cpus = slices.Clone(p.cpu)
		}
		p.mu.Unlock()
	}
	return
}

func kindList(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func maxOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds)
}

func mean(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func pct(x float64) string { return fmt.Sprintf("%.2f%%", x) }

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}
