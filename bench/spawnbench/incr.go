package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// incrSize is the pool size the incr measurement grows to, from one worker
// (issue 3: "incr from 1 to 50 until all 50 ready: at most 1.2x the floor's
// time for 50 spawns").
const incrSize = 50

// floorIncr times the floor starting incrSize-1 more workers beside a
// running one, until all of them are ready.
func floorIncr(ctx context.Context, dir, bin string) (time.Duration, error) {
	nt, err := newNotifier(filepath.Join(dir, "floor-incr.sock"))
	if err != nil {
		return 0, err
	}
	defer nt.Close()
	f, err := newFloor(bin, []string{"BENCH_NOTIFY=" + nt.path, "PATH=" + os.Getenv("PATH")})
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := f.Start(1); err != nil {
		return 0, err
	}
	if _, err := nt.waitN(ctx, 1, readyTimeout); err != nil {
		return 0, err
	}
	t0 := time.Now()
	if err := f.Start(incrSize - 1); err != nil {
		return 0, err
	}
	last, err := nt.waitN(ctx, incrSize-1, 6*readyTimeout)
	if err != nil {
		return 0, err
	}
	return last.Sub(t0), nil
}

// ringIncr times Watcher.Incr growing a running one-worker pool to
// incrSize, until all of them are ready.
func ringIncr(ctx context.Context, dir, bin string, cg cgroupOpts) (d time.Duration, err error) {
	nt, err := newNotifier(filepath.Join(dir, "ring-incr.sock"))
	if err != nil {
		return 0, err
	}
	defer nt.Close()
	ini, err := writeConfig(dir, bin, nt.path, 1, cg)
	if err != nil {
		return 0, err
	}
	defer os.Remove(ini)
	r, err := newRing(ini)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("arbiter run: %w", cerr)
		}
	}()
	r.Run()
	if _, err := nt.waitN(ctx, 1, readyTimeout); err != nil {
		return 0, err
	}
	t0 := time.Now()
	errc := make(chan error, 1)
	go func() {
		_, err := r.w.Incr(ctx, incrSize-1)
		errc <- err
	}()
	last, err := nt.waitN(ctx, incrSize-1, 6*readyTimeout)
	if err != nil {
		return 0, err
	}
	if err := <-errc; err != nil {
		return 0, fmt.Errorf("incr: %w", err)
	}
	return last.Sub(t0), nil
}

// incrRounds measures both, alternating, and prints the medians.
func incrRounds(ctx context.Context, dir, bin string, rounds int, cg cgroupOpts) error {
	var fl, rm []time.Duration
	for range rounds {
		f, err := floorIncr(ctx, dir, bin)
		if err != nil {
			return fmt.Errorf("floor incr: %w", err)
		}
		r, err := ringIncr(ctx, dir, bin, cg)
		if err != nil {
			return fmt.Errorf("ringmaster incr: %w", err)
		}
		fl, rm = append(fl, f), append(rm, r)
	}
	mf, mr := median(fl), median(rm)
	fmt.Printf("%-40s  %-16s  %-17s  %-11s  %-17s  %s\n", fmt.Sprintf("incr 1 -> %d until all ready, median of %d", incrSize, rounds),
		ms(mf), ms(mr), fmt.Sprintf("%.2fx", float64(mr)/float64(mf)), "<= 1.2x", verdict(float64(mr) <= 1.2*float64(mf)))
	return nil
}
