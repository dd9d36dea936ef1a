package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// readyTimeout bounds every wait for a worker's READY.
const readyTimeout = 10 * time.Second

// killGap is the pause between one respawn and the next kill.
const killGap = 50 * time.Millisecond

// pool is what the respawn test needs of a launcher.
type pool struct {
	// live returns the pids of the workers the launcher counts as running;
	// nil means "the ones that reported ready and were not killed".
	live func(ctx context.Context) ([]int, error)
	// err reports a launcher failure that a wait would otherwise only see
	// as a timeout.
	err func() error
}

// respawns kills k workers one at a time with SIGKILL and returns, for
// each, the time from the kill to the READY of a worker not seen before.
// Before each kill the pool is back to n ready workers.
func respawns(ctx context.Context, nt *notifier, p pool, n, k int) ([]time.Duration, error) {
	ready := map[int]bool{}
	for pid := range nt.seen {
		ready[pid] = true
	}
	var lat []time.Duration
	for i := range k {
		if err := pause(ctx, killGap); err != nil {
			return lat, err
		}
		pids, err := settled(ctx, p, ready, n)
		if err != nil {
			return lat, fmt.Errorf("respawn %d: %w", i+1, err)
		}
		pid := pids[rand.IntN(len(pids))]
		t0 := time.Now()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			return lat, fmt.Errorf("respawn %d: kill %d: %w", i+1, pid, err)
		}
		delete(ready, pid)
		r, err := nt.next(ctx, readyTimeout)
		if err != nil {
			if perr := p.err(); perr != nil {
				err = perr
			}
			return lat, fmt.Errorf("respawn %d: %w", i+1, err)
		}
		ready[r.pid] = true
		lat = append(lat, r.at.Sub(t0))
	}
	return lat, nil
}

// settled waits until the pool has n live workers, all of them ready, and
// returns their pids.
func settled(ctx context.Context, p pool, ready map[int]bool, n int) ([]int, error) {
	if p.live == nil {
		var pids []int
		for pid := range ready {
			pids = append(pids, pid)
		}
		if len(pids) != n {
			return nil, fmt.Errorf("%d workers ready, want %d", len(pids), n)
		}
		return pids, nil
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		pids, err := p.live(ctx)
		if err != nil {
			return nil, err
		}
		if len(pids) == n && !slices.ContainsFunc(pids, func(pid int) bool { return !ready[pid] }) {
			return pids, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("pool not back to %d ready workers within %v (%d live)", n, readyTimeout, len(pids))
		}
		if err := pause(ctx, time.Millisecond); err != nil {
			return nil, err
		}
	}
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

// idle is what this process costs while its workers sit idle.
type idle struct {
	cpuPct    float64 // of one core, user+system, children excluded
	rssKB     int     // VmRSS at the end
	hwmKB     int     // VmHWM: the peak over the whole benchmark so far
	heapInuse uint64
	threads   int
}

// measureIdle samples this process's own CPU time over d (getrusage
// RUSAGE_SELF counts no children), then reads its memory as it is: no GC
// is forced first.
func measureIdle(ctx context.Context, d time.Duration) (idle, error) {
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		return idle{}, fmt.Errorf("getrusage: %w", err)
	}
	t0 := time.Now()
	if err := pause(ctx, d); err != nil {
		return idle{}, err
	}
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		return idle{}, fmt.Errorf("getrusage: %w", err)
	}
	wall := time.Since(t0)
	cpu := tv(r1.Utime) - tv(r0.Utime) + tv(r1.Stime) - tv(r0.Stime)
	st, err := procStatus()
	if err != nil {
		return idle{}, err
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return idle{
		cpuPct:    100 * cpu.Seconds() / wall.Seconds(),
		rssKB:     st["VmRSS"],
		hwmKB:     st["VmHWM"],
		heapInuse: ms.HeapInuse,
		threads:   st["Threads"],
	}, nil
}

// selfCPU is this process's user+system time so far, children excluded.
func selfCPU() time.Duration {
	var r syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &r)
	return tv(r.Utime) + tv(r.Stime)
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

// procStatus reads the numeric fields of /proc/self/status (kB for the
// memory ones).
func procStatus() (map[string]int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v)
		if len(fields) == 0 {
			continue
		}
		if n, err := strconv.Atoi(fields[0]); err == nil {
			m[k] = n
		}
	}
	return m, sc.Err()
}

// checkServes makes one HTTP request to addr, to show that the workers
// really serve on the shared socket.
func checkServes(ctx context.Context, addr string) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("GET %s: %w", addr, err)
	}
	if !strings.HasPrefix(string(body), "hello from pid ") {
		return fmt.Errorf("GET %s = %q, want hello from pid N", addr, body)
	}
	return nil
}

// percentile is the nearest-rank p-th percentile (0 < p <= 100) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
