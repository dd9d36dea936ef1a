package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// killer kills one worker of a watcher, gracefully (the watcher's stop
// signal, SIGTERM), as the console's kill button does. ok is false when
// the watcher had no worker to spare at that moment.
type killer interface {
	kill(ctx context.Context, watcher string) (ok bool, err error)
}

// pageKiller sends kill over the driving page's WebSocket, exactly as the
// console's page does ({name, pid}, no waiting): the reply comes once the
// command is queued, and the page sees the kill, reap and spawn events.
type pageKiller struct{ p *page }

func (k pageKiller) kill(_ context.Context, watcher string) (bool, error) {
	id, pid, ok := k.p.drv.next(watcher)
	if !ok {
		return false, nil
	}
	b, err := json.Marshal(map[string]any{
		"id": id, "command": "kill", "properties": map[string]any{"name": watcher, "pid": pid},
	})
	if err == nil {
		err = k.p.send(b)
	}
	if err != nil {
		k.p.drv.unsent(id, pid)
		return false, fmt.Errorf("kill %s[%d] over the WebSocket: %w", watcher, pid, err)
	}
	return true, nil
}

// zmqKiller is the same kill through the ZeroMQ control endpoint, for the
// phase without pages: `list NAME` for the pids, then `kill`.
type zmqKiller struct {
	c       *control.Client
	killed  map[int]bool
	replies []time.Duration // kill sent → its reply
}

func (k *zmqKiller) kill(ctx context.Context, watcher string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	raw, err := k.c.Call(ctx, "list", map[string]any{"name": watcher})
	if err != nil {
		return false, fmt.Errorf("list %s: %w", watcher, err)
	}
	var r struct{ Pids []int }
	if err := json.Unmarshal(raw, &r); err != nil {
		return false, fmt.Errorf("list %s: %w", watcher, err)
	}
	i := slices.IndexFunc(r.Pids, func(pid int) bool { return !k.killed[pid] })
	if i < 0 {
		return false, nil
	}
	pid := r.Pids[i]
	k.killed[pid] = true
	t0 := time.Now()
	if _, err := k.c.Call(ctx, "kill", map[string]any{"name": watcher, "pid": pid}); err != nil {
		return false, fmt.Errorf("kill %s[%d]: %w", watcher, pid, err)
	}
	k.replies = append(k.replies, time.Since(t0))
	return true, nil
}

// killLoop kills one worker every interval, taking the watchers in turn,
// until its stop is called.
type killLoop struct {
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	kills   atomic.Int64
	skipped atomic.Int64 // ticks on which no watcher had a worker to spare
	err     error        // valid after stop
}

func startKills(ctx context.Context, k killer, watchers []string, every time.Duration) *killLoop {
	ctx, cancel := context.WithCancel(ctx)
	l := &killLoop{cancel: cancel}
	l.wg.Go(func() {
		tick := time.NewTicker(every)
		defer tick.Stop()
		next := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ok := false
			for range watchers {
				w := watchers[next%len(watchers)]
				next++
				var err error
				if ok, err = k.kill(ctx, w); err != nil {
					if ctx.Err() == nil {
						l.err = err
					}
					return
				}
				if ok {
					break
				}
			}
			if ok {
				l.kills.Add(1)
			} else {
				l.skipped.Add(1)
			}
		}
	})
	return l
}

// counts returns the kills made so far and the ticks skipped.
func (l *killLoop) counts() (kills, skipped int) {
	return int(l.kills.Load()), int(l.skipped.Load())
}

// stop ends the loop and returns the error that ended it early, if any.
func (l *killLoop) stop() error {
	l.cancel()
	l.wg.Wait()
	return l.err
}
