package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
)

// restartSize is the pool the restart measurement replaces (issue 3:
// "restart of 10 workers under load: zero failed requests, and done (all
// new ready) within 1.5x a cold start of 10").
const restartSize = 10

// restartLoad is how many clients send requests, one at a time each,
// without keep-alive so that every request is a new connection that some
// worker must accept.
const restartLoad = 4

// restartConfig is configTmpl's pool with the example HTTP worker, which
// drains on SIGTERM and reports readiness on $NOTIFY_SOCKET.
const restartConfig = `[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = %s --fd $(circus.sockets.web)
numprocesses = %d
copy_env = false
graceful_timeout = 10
close_child_stdout = true
close_child_stderr = true

[env:web]
NOTIFY_SOCKET = %s
`

type restartResult struct {
	cold, restart time.Duration
	answered      time.Duration // the reply, once the old workers are gone
	ok, failed    int64
	firstErr      error
}

// restartOnce cold-starts a pool of restartSize, then restarts it through
// the command table (the same path as `circusctl restart web --waiting`),
// and times both until every new worker reported ready; the restart's
// reply comes later, once the old workers drained. With loaded, clients
// send requests from before the cold start (they wait in the socket's
// backlog until the first worker accepts) until after the restart, so
// that both times are taken under the same load.
func restartOnce(ctx context.Context, dir, httpBin string, loaded bool) (res restartResult, err error) {
	nt, err := newNotifier(filepath.Join(dir, "restart.sock"))
	if err != nil {
		return res, err
	}
	defer nt.Close()
	ini := filepath.Join(dir, "restart.ini")
	if err := os.WriteFile(ini, fmt.Appendf(nil, restartConfig, httpBin, restartSize, nt.path), 0o644); err != nil {
		return res, err
	}
	defer os.Remove(ini)
	r, err := newRing(ini)
	if err != nil {
		return res, err
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("arbiter run: %w", cerr)
		}
	}()
	table, err := commands.New(r.a, commands.Options{})
	if err != nil {
		return res, err
	}
	defer table.Close()

	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	var firstErr atomic.Value
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	clients := 0
	if loaded {
		clients = restartLoad
	}
	for range clients {
		wg.Go(func() {
			for loadCtx.Err() == nil {
				resp, err := client.Get("http://" + r.Addr() + "/")
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				switch {
				case err == nil:
					ok.Add(1)
				case loadCtx.Err() != nil && errors.Is(err, context.Canceled):
				default:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		})
	}
	defer func() {
		stopLoad()
		wg.Wait()
		res.ok, res.failed = ok.Load(), failed.Load()
		if e, _ := firstErr.Load().(error); e != nil {
			res.firstErr = e
		}
	}()

	t0 := time.Now()
	r.Run()
	last, err := nt.waitN(ctx, restartSize, 6*readyTimeout)
	if err != nil {
		return res, err
	}
	res.cold = last.Sub(t0)
	// Let the load reach a steady state before the restart.
	if err := pause(ctx, 300*time.Millisecond); err != nil {
		return res, err
	}

	req, derr := control.DecodeRequest([]byte(`{"id": 1, "command": "restart", "properties": {"name": "web", "waiting": true}}`))
	if derr != nil {
		return res, derr
	}
	readyc := make(chan error, 1)
	var lastReady time.Time
	t1 := time.Now()
	go func() {
		var err error
		lastReady, err = nt.waitN(ctx, restartSize, 6*readyTimeout)
		readyc <- err
	}()
	rep := table.Handle(ctx, req)
	answered := time.Now()
	if rep.Err != nil {
		return res, fmt.Errorf("restart: %s", rep.Err.Reason)
	}
	if err := <-readyc; err != nil {
		return res, err
	}
	res.restart = lastReady.Sub(t1)
	res.answered = answered.Sub(t1)
	// Keep the load on a moment after the old workers are gone.
	return res, pause(ctx, 200*time.Millisecond)
}

// restartRounds measures rounds restarts without load and as many under
// load, alternating, and prints the medians.
func restartRounds(ctx context.Context, dir, httpBin string, rounds int) error {
	type series struct {
		cold, restart, answered []time.Duration
		ok, failed              int64
		firstErr                error
	}
	var idle, loaded series
	for range rounds {
		for _, s := range []*series{&idle, &loaded} {
			res, err := restartOnce(ctx, dir, httpBin, s == &loaded)
			if err != nil {
				return fmt.Errorf("restart round: %w", err)
			}
			s.cold, s.restart, s.answered = append(s.cold, res.cold), append(s.restart, res.restart), append(s.answered, res.answered)
			s.ok += res.ok
			s.failed += res.failed
			if s.firstErr == nil {
				s.firstErr = res.firstErr
			}
		}
	}
	for _, s := range []struct {
		label string
		*series
	}{{"no load", &idle}, {fmt.Sprintf("%d clients", restartLoad), &loaded}} {
		mc, mr := median(s.cold), median(s.restart)
		fmt.Printf("%-40s  %-16s  %-17s  %-11s  %-17s  %s\n", fmt.Sprintf("restart of %d, %s, median of %d", restartSize, s.label, rounds),
			ms(mc)+" cold", ms(mr), fmt.Sprintf("%.2fx", float64(mr)/float64(mc)), "<= 1.5x", verdict(float64(mr) <= 1.5*float64(mc)))
		fmt.Printf("%-40s  %s, once the old workers drained\n", "  restart reply", ms(median(s.answered)))
	}
	fmt.Printf("%-40s  %d requests, %d failed  %s\n", "requests during cold starts and restarts", loaded.ok+loaded.failed, loaded.failed, verdict(loaded.failed == 0))
	if loaded.firstErr != nil {
		fmt.Printf("first failure: %v\n", loaded.firstErr)
	}
	return nil
}
