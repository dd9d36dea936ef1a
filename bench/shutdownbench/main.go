// Command shutdownbench measures how long the arbiter takes to shut down
// with a large pool up and another watcher stuck in starting, the "Speed"
// target of issue 14: with 1,000 workers and a watcher whose worker never
// becomes ready (ready = notify, a long ready_timeout), the shutdown that
// SIGTERM begins (the cancel of Run's context, which is what cmd/arbiter
// does on SIGTERM) must end within graceful_timeout + 1 s.
//
// It runs the arbiter in this process through config.Load, arbiter.New
// and Arbiter.Run, with /bin/sleep as every worker, starts a restart of
// all watchers (which waits for the stuck one's first attempt, as an
// operator's restart would), cancels Run's context while the restart
// waits, and times Run's return. It then checks that no worker is left.
//
//	go run ./bench/shutdownbench -n 1000 -graceful 2s -rounds 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
)

func main() {
	n := flag.Int("n", 1000, "workers in the large pool")
	graceful := flag.Duration("graceful", 2*time.Second, "graceful_timeout of both watchers")
	rounds := flag.Int("rounds", 3, "shutdowns measured")
	verbose := flag.Bool("v", false, "the arbiter's log on stderr, from the shutdown on")
	flag.Parse()
	failed := false
	for i := range *rounds {
		took, left, err := round(*n, *graceful, *verbose)
		if err != nil {
			fmt.Fprintln(os.Stderr, "shutdownbench:", err)
			os.Exit(1)
		}
		verdict := "ok"
		if took > *graceful+time.Second || left > 0 {
			verdict, failed = "FAIL", true
		}
		fmt.Printf("round %d: %d workers + 1 stuck starting, restart pending: shutdown %v (target ≤ %v), workers left %d: %s\n",
			i+1, *n, took.Round(time.Millisecond), *graceful+time.Second, left, verdict)
	}
	if failed {
		os.Exit(1)
	}
}

// round runs one arbiter and returns how long its shutdown took and how
// many of its workers outlived it.
func round(n int, graceful time.Duration, verbose bool) (time.Duration, int, error) {
	dir, err := os.MkdirTemp("", "shutdownbench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	ini := filepath.Join(dir, "bench.ini")
	g := graceful.Seconds()
	text := fmt.Sprintf(`[circus]
endpoint = ipc://%[1]s/ctl.sock
pubsub_endpoint = ipc://%[1]s/pub.sock

[watcher:pool]
cmd = /bin/sleep 3600
numprocesses = %[2]d
graceful_timeout = %[3]g
close_child_stdout = true
close_child_stderr = true

[watcher:stuck]
cmd = /bin/sleep 3600
ready = notify
ready_timeout = 600
graceful_timeout = %[3]g
`, dir, n, g)
	if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
		return 0, 0, err
	}
	cfg, err := config.Load(ini)
	if err != nil {
		return 0, 0, err
	}
	var logOn atomic.Bool
	logger := slog.New(slog.NewTextHandler(condWriter{&logOn, os.Stderr}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	a, err := arbiter.New(cfg, arbiter.Options{Logger: logger})
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	pool := a.Watcher("pool")
	var pids []int
	if err := poll(2*time.Minute, func() bool {
		st, err := pool.Status(ctx)
		if err != nil || st.State != arbiter.Active || len(st.Procs) != n {
			return false
		}
		pids = pids[:0]
		for _, p := range st.Procs {
			pids = append(pids, p.Pid)
		}
		return true
	}); err != nil {
		cancel()
		<-done
		return 0, 0, fmt.Errorf("pool of %d not up: %w", n, err)
	}
	// A restart that waits for the stuck watcher's first attempt, as an
	// operator's would.
	before := slices.Clone(pids)
	restarted := make(chan error, 1)
	go func() { restarted <- a.Restart(context.Background()) }()
	stuck := a.Watcher("stuck")
	if err := poll(2*time.Minute, func() bool {
		st, err := stuck.Status(ctx)
		if err != nil || st.State != arbiter.Starting || len(st.Procs) != 1 {
			return false
		}
		ps, err := pool.Status(ctx)
		if err != nil || len(ps.Procs) != n || ps.State != arbiter.Active {
			return false
		}
		// The restart has replaced the pool: it now waits for stuck.
		if slices.ContainsFunc(ps.Procs, func(p arbiter.ProcessInfo) bool { return slices.Contains(before, p.Pid) }) {
			return false
		}
		pids = pids[:0]
		for _, p := range ps.Procs {
			pids = append(pids, p.Pid)
		}
		pids = append(pids, st.Procs[0].Pid)
		return true
	}); err != nil {
		cancel()
		<-done
		return 0, 0, fmt.Errorf("restart not waiting on the stuck watcher: %w", err)
	}
	logOn.Store(verbose)
	begin := time.Now()
	cancel()
	if err := <-done; err != nil {
		return 0, 0, err
	}
	took := time.Since(begin)
	<-restarted
	left := slices.DeleteFunc(pids, func(p int) bool { return errors.Is(syscall.Kill(p, 0), syscall.ESRCH) })
	for _, p := range left {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
	return took, len(left), nil
}

// poll checks cond every 20 ms until it holds or d has passed.
func poll(d time.Duration, cond func() bool) error {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return nil
		}
	}
	return errors.New("timed out")
}

// condWriter writes to w while on is set: the log of a shutdown alone.
type condWriter struct {
	on *atomic.Bool
	w  io.Writer
}

func (c condWriter) Write(p []byte) (int, error) {
	if !c.on.Load() {
		return len(p), nil
	}
	return c.w.Write(p)
}
