package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"text/tabwriter"
	"time"
)

// latencies records how long each command took to be answered, by
// command. It is safe for concurrent use.
type latencies struct {
	mu     sync.Mutex
	by     map[string][]time.Duration
	errors map[string]int
}

func newLatencies() *latencies {
	return &latencies{by: map[string][]time.Duration{}, errors: map[string]int{}}
}

func (l *latencies) add(cmd string, d time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.by[cmd] = append(l.by[cmd], d)
	if err != nil {
		l.errors[cmd]++
	}
}

// write prints one line per command: count, errors, median, p99, max.
func (l *latencies) write(w io.Writer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "command\tcount\terrors\tmedian\tp99\tmax\t")
	for _, cmd := range slices.Sorted(maps.Keys(l.by)) {
		ds := slices.Clone(l.by[cmd])
		slices.Sort(ds)
		fmt.Fprintf(tw, "%s\t%d\t%d\t%v\t%v\t%v\t\n", cmd, len(ds), l.errors[cmd],
			round(quantile(ds, 0.5)), round(quantile(ds, 0.99)), round(ds[len(ds)-1]))
	}
	tw.Flush()
}

// quantile returns the q-quantile of sorted ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(q*float64(len(ds))+0.5) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// failures are the broken invariants of a run, in the order seen. It is
// safe for concurrent use.
type failures struct {
	t0    time.Time
	trace func(format string, args ...any)
	mu    sync.Mutex
	list  []string
}

// add records a broken invariant, stamped with the time since the run
// started, and prints it at once: a run that hangs later has still said
// what it saw.
func (f *failures) add(format string, args ...any) {
	msg := fmt.Sprintf("[%6.1fs] ", time.Since(f.t0).Seconds()) + fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.list = append(f.list, msg)
	f.mu.Unlock()
	fmt.Println("INVARIANT BROKEN", msg)
	f.trace("INVARIANT BROKEN %s", msg)
}

func (f *failures) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

// counter counts operations by name. It is safe for concurrent use.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) inc(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[name]++
}

func (c *counter) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s string
	for _, k := range slices.Sorted(maps.Keys(c.n)) {
		if s != "" {
			s += ", "
		}
		s += fmt.Sprintf("%s %d", k, c.n[k])
	}
	return s
}

// pause waits d or until ctx is done.
func pause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
