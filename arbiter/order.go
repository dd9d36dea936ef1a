package arbiter

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"
)

// The order of starts and stops across watchers: priorities, and what a
// start waits for before the next priority begins.

// startAll starts the autostart watchers, highest priority first, pausing
// warmup between two starts. Watchers of one priority start one after
// another without waiting for each other; those of a lower priority start
// once every one of the higher is active or has failed its first attempt
// (see startAsync): a priority is an ordering, as systemd's After=, so a
// database with ready = notify is serving before the application that
// needs it starts, and a watcher that cannot start holds the others back
// by one attempt, not by all its retries. The same holds for the answer:
// a command (restart, start, reloadconfig) answers once every watcher is
// active or has failed an attempt, as systemctl start answers with its
// job, not with the restarts that follow, and a watcher that retries on
// is one of its errors. At start-up (command false) it is a warning only.
// It logs each failure and returns them joined.
func (a *Arbiter) startAll(ctx context.Context, ws []*Watcher, warmup time.Duration, command bool) error {
	last, err := a.startLevels(ctx, ws, warmup, command)
	return errors.Join(err, a.awaitLevel(ctx, last, command))
}

// started is a watcher whose start was begun, and where its answer comes.
type started struct {
	w     *Watcher
	reply <-chan error
}

// startLevels is startAll up to the last priority, whose starts it begins
// and returns without waiting for them: at start-up the arbiter takes
// commands meanwhile.
func (a *Arbiter) startLevels(ctx context.Context, ws []*Watcher, warmup time.Duration, command bool) ([]started, error) {
	ws = slices.Clone(ws)
	slices.SortStableFunc(ws, func(x, y *Watcher) int { return cmp.Compare(y.spec.Priority, x.spec.Priority) })
	var errs []error
	var level []started
	first := true
	for i := 0; i < len(ws); {
		if err := a.awaitLevel(ctx, level, command); err != nil {
			errs = append(errs, err)
		}
		level = nil
		end := i
		for end < len(ws) && ws[end].spec.Priority == ws[i].spec.Priority {
			end++
		}
		for _, w := range ws[i:end] {
			if !w.spec.Autostart {
				continue
			}
			if !first && warmup > 0 {
				t := time.NewTimer(warmup)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
					return nil, errors.Join(append(errs, ctx.Err())...)
				}
			}
			first = false
			reply, err := w.startAsync(ctx)
			if err != nil {
				a.log.Error("start failed", "watcher", w.name, "err", err)
				errs = append(errs, err)
				continue
			}
			level = append(level, started{w, reply})
		}
		i = end
	}
	return level, errors.Join(errs...)
}

// awaitLevel waits for the answers of the starts of one priority (see
// startAll), logs each failure and returns them joined.
func (a *Arbiter) awaitLevel(ctx context.Context, level []started, command bool) error {
	var errs []error
	for _, s := range level {
		select {
		case err := <-s.reply:
			switch {
			case errors.Is(err, errRetrying) && !command:
				a.log.Warn("not started yet; the next priorities start", "watcher", s.w.name, "err", err)
			case err != nil:
				a.log.Error("start failed", "watcher", s.w.name, "err", err)
				errs = append(errs, err)
			}
		case <-ctx.Done():
			return errors.Join(append(errs, ctx.Err())...)
		}
	}
	return errors.Join(errs...)
}

// stopWatchers stops ws in reverse priority order; a background context,
// because graceful_timeout already bounds every stop.
func (a *Arbiter) stopWatchers(ws []*Watcher) {
	for end := len(ws); end > 0; {
		start := end - 1
		for start > 0 && ws[start-1].spec.Priority == ws[end-1].spec.Priority {
			start--
		}
		var wg sync.WaitGroup
		for _, w := range ws[start:end] {
			wg.Go(func() {
				if err := w.Stop(context.Background()); err != nil {
					a.log.Error("stop failed", "watcher", w.name, "err", err)
				}
			})
		}
		wg.Wait()
		end = start
	}
}
