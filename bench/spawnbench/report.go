package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The targets of issue 2's "Speed" section, and the tighter ones of issue
// 14 (spawning into cgroups costs nothing when no limit needs them),
// checked on the medians.
const (
	coldRatioTarget   = 1.2
	respawnSlack      = 5 * time.Millisecond
	coldRatioCgroup   = 1.1
	respawnCgroup     = 1500 * time.Microsecond
	idleCPUTarget     = 1.0 // % of one core
	idleRSSTargetKB   = 30 * 1024
	mb                = 1024.0
	notApplicable     = "-"
	informationalOnly = "info"
)

// report prints one table: metric, floor, Ringmaster, ratio or delta,
// target, verdict.
func report(out io.Writer, o options, fl, rm []result) {
	cold := func(rs []result, pick func([]time.Duration) time.Duration) time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.cold)
		}
		return pick(ds)
	}
	launched := func(rs []result) time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.launched)
		}
		return median(ds)
	}
	minimum := func(ds []time.Duration) time.Duration { return slices.Min(ds) }
	f, r := fl[len(fl)-1], rm[len(rm)-1]
	// Respawns of every round (only the last has some without -spread).
	f.respawn, r.respawn = nil, nil
	for i := range fl {
		f.respawn = append(f.respawn, fl[i].respawn...)
		r.respawn = append(r.respawn, rm[i].respawn...)
	}

	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t") }
	row("metric", "floor", "ringmaster", "ratio/delta", "target", "verdict")

	for _, c := range []struct {
		name string
		pick func([]time.Duration) time.Duration
	}{{"min", minimum}, {"median", median}} {
		fc, rc := cold(fl, c.pick), cold(rm, c.pick)
		ratio := float64(rc) / float64(fc)
		row(fmt.Sprintf("cold start %d, %s of %d", o.n, c.name, len(fl)), ms(fc), ms(rc),
			fmt.Sprintf("%.2fx", ratio), fmt.Sprintf("<= %.1fx", coldRatioTarget), verdict(ratio <= coldRatioTarget))
		if c.name == "median" {
			row("  issue 14", "", "", "", fmt.Sprintf("<= %.1fx", coldRatioCgroup), verdict(ratio <= coldRatioCgroup))
		}
	}
	// Each round's floor and Ringmaster run back to back: their ratio is
	// less swayed by a load that changes over the run than the ratio of
	// the medians.
	var ratios []float64
	for i := range fl {
		ratios = append(ratios, float64(rm[i].cold)/float64(fl[i].cold))
	}
	slices.Sort(ratios)
	row("  cold start ratio, median of rounds", notApplicable, notApplicable, fmt.Sprintf("%.2fx", ratios[len(ratios)/2]),
		notApplicable, informationalOnly)
	fs, rs := launched(fl), launched(rm)
	row("  last fork / Started(), median", ms(fs), ms(rs), fmt.Sprintf("%.2fx", float64(rs)/float64(fs)), notApplicable, informationalOnly)

	selfc := func(rs []result) time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.selfCPU)
		}
		return median(ds)
	}
	kidc := func(rs []result) time.Duration {
		var ds []time.Duration
		for _, r := range rs {
			ds = append(ds, r.kidCPU)
		}
		return median(ds)
	}
	fs, rs = selfc(fl), selfc(rm)
	row("  launcher CPU during cold start, median", ms(fs), ms(rs), fmt.Sprintf("%+.1f ms", float64(rs-fs)/float64(time.Millisecond)), notApplicable, informationalOnly)
	fs, rs = kidc(fl), kidc(rm)
	row("  CPU per worker started, median", ms(fs), ms(rs), fmt.Sprintf("%+.1f ms", float64(rs-fs)/float64(time.Millisecond)), notApplicable, informationalOnly)

	if o.respawns > 0 {
		for _, p := range []struct {
			name string
			pct  float64
		}{{"median", 50}, {"p95", 95}} {
			fp, rp := percentile(f.respawn, p.pct), percentile(r.respawn, p.pct)
			row(fmt.Sprintf("respawn %s of %d", p.name, len(r.respawn)), ms(fp), ms(rp),
				fmt.Sprintf("%+.1f ms", float64(rp-fp)/float64(time.Millisecond)),
				"<= floor + "+ms(respawnSlack), verdict(rp <= fp+respawnSlack))
			if p.pct == 50 {
				row("  issue 14", "", "", "", "<= floor + "+ms(respawnCgroup), verdict(rp <= fp+respawnCgroup))
			}
		}
		fmax, rmax := slices.Max(f.respawn), slices.Max(r.respawn)
		row("  respawn min / max", ms(slices.Min(f.respawn))+" / "+ms(fmax), ms(slices.Min(r.respawn))+" / "+ms(rmax),
			notApplicable, notApplicable, informationalOnly)
	}

	row(fmt.Sprintf("idle CPU over %v, %% of a core", o.idle), fmt.Sprintf("%.3f%%", f.idle.cpuPct), fmt.Sprintf("%.3f%%", r.idle.cpuPct),
		notApplicable, fmt.Sprintf("< %.0f%%", idleCPUTarget), verdict(r.idle.cpuPct < idleCPUTarget))
	row("idle VmRSS (whole process)", mib(f.idle.rssKB), mib(r.idle.rssKB),
		notApplicable, fmt.Sprintf("< %.0f MB", float64(idleRSSTargetKB)/mb), verdict(r.idle.rssKB < idleRSSTargetKB))
	row("  VmRSS before arbiter.New", notApplicable, mib(r.baseRSS), notApplicable, notApplicable, informationalOnly)
	row("  VmHWM (peak so far)", mib(f.idle.hwmKB), mib(r.idle.hwmKB), notApplicable, notApplicable, informationalOnly)
	row("  Go heap in use", fmt.Sprintf("%.1f MB", float64(f.idle.heapInuse)/(1<<20)), fmt.Sprintf("%.1f MB", float64(r.idle.heapInuse)/(1<<20)),
		notApplicable, notApplicable, informationalOnly)
	row("  OS threads", fmt.Sprint(f.idle.threads), fmt.Sprint(r.idle.threads), notApplicable, notApplicable, informationalOnly)
	tw.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func mib(kb int) string { return fmt.Sprintf("%.1f MB", float64(kb)/mb) }
