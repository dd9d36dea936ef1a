package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// call runs command and decodes its reply into v.
func call(ctx context.Context, cl *control.Client, command string, props map[string]any, v any) error {
	rep, err := cl.Call(ctx, command, props)
	if err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	if err := json.Unmarshal(rep, v); err != nil {
		return fmt.Errorf("%s: reply %s: %w", command, rep, err)
	}
	return nil
}

// report prints the table: the hand-over per endpoint and in all, median
// and worst over the rounds, beside the floor; then the HTTP requests.
func report(n, watchers, clients int, results []result, floors map[string][]time.Duration, ps []probe) {
	fmt.Printf("\nupgradebench: %d sleeping workers in %d watchers + 4 HTTP workers, %d rounds of SIGUSR2, %d HTTP clients\n\n",
		n, watchers, len(results), clients)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "from SIGUSR2 to\tmedian\tworst\tfloor median\tfloor worst\t")
	for _, p := range ps {
		var ds []time.Duration
		for _, r := range results {
			ds = append(ds, r.each[p.name])
		}
		med, worst := medWorst(ds)
		fmed, fworst := medWorst(floors[p.name])
		fmt.Fprintf(tw, "%s answers\t%s\t%s\t%s\t%s\t\n", p.name, ms(med), ms(worst), ms(fmed), ms(fworst))
	}
	var all []time.Duration
	var failed, answered int64
	var slowest time.Duration
	for _, r := range results {
		all = append(all, r.all)
		failed += r.failed
		answered += r.requests
		slowest = max(slowest, r.slowest)
	}
	var took []time.Duration
	for _, r := range results {
		took = append(took, r.took)
	}
	tmed, tworst := medWorst(took)
	fmt.Fprintf(tw, "the arbiter's own took=\t%s\t%s\t\t\t\n", ms(tmed), ms(tworst))
	med, worst := medWorst(all)
	fmt.Fprintf(tw, "every endpoint answers\t%s\t%s\t\t\t\n", ms(med), ms(worst))
	tw.Flush()
	verdict := "PASS"
	if worst > target {
		verdict = "MISS"
	}
	fmt.Printf("\ntarget: hand-over under %v with %d workers, worst round %s: %s\n", target, n, ms(worst), verdict)
	verdict = "PASS"
	if failed > 0 {
		verdict = "MISS"
	}
	fmt.Printf("HTTP during the rounds: %d answered, %d failed (target 0: %s), slowest request %s\n", answered, failed, verdict, ms(slowest))
}

func medWorst(ds []time.Duration) (med, worst time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := sortedDurations(ds)
	return s[len(s)/2], s[len(s)-1]
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}
