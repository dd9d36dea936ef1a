package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
)

// configTmpl is the Ringmaster side: one socket, one watcher of the bench
// worker. Flapping is off because the respawn test kills workers faster
// than the default limit (10 deaths in 5 s) allows.
const configTmpl = `[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = %s --fd $(circus.sockets.web)
numprocesses = %d
copy_env = false
check_flapping = false
graceful_timeout = 5

%s
[env:web]
BENCH_NOTIFY = %s
PATH = %s
`

// cgroupOpts are the watcher's cgroup keys; the zero value sets none (the
// default, cgroup = auto without limits).
type cgroupOpts struct {
	mode      string // the cgroup key: auto, worker, off; "": unset
	memoryMax string // cgroup.memory_max; "": unset
}

func (c cgroupOpts) keys() string {
	var s string
	if c.mode != "" {
		s += "cgroup = " + c.mode + "\n"
	}
	if c.memoryMax != "" {
		s += "cgroup.memory_max = " + c.memoryMax + "\n"
	}
	return s
}

func (c cgroupOpts) String() string {
	s := "cgroup = " + c.mode
	if c.mode == "" {
		s = "cgroup unset (auto)"
	}
	if c.memoryMax != "" {
		s += ", cgroup.memory_max = " + c.memoryMax
	}
	return s
}

// ring is a running Arbiter of the bench configuration.
type ring struct {
	a *arbiter.Arbiter
	w *arbiter.Watcher

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	runDone   chan struct{} // closed when Run has returned
	runErr    error         // valid after runDone
	startedAt chan time.Time
}

// writeConfig writes the bench configuration into dir and returns its path.
// cg adds the watcher's cgroup keys (-cgroup, -cgroup-memory).
func writeConfig(dir, bin, notifyPath string, n int, cg cgroupOpts) (string, error) {
	for _, s := range []string{bin, notifyPath, dir} {
		if strings.ContainsAny(s, " \t\n'\"\\$#;") {
			return "", fmt.Errorf("path %q has characters the ini file would need quoted; set TMPDIR", s)
		}
	}
	path := filepath.Join(dir, "bench.ini")
	ini := fmt.Sprintf(configTmpl, bin, n, cg.keys(), notifyPath, os.Getenv("PATH"))
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// newRing loads the configuration and binds its socket (arbiter.New); Run
// starts it.
func newRing(iniPath string) (*ring, error) {
	cfg, err := config.Load(iniPath)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(os.Stderr, "spawnbench: config: %v\n", w)
	}
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	r := &ring{a: a, w: a.Watcher("web"), runDone: make(chan struct{}), startedAt: make(chan time.Time, 1)}
	if r.w == nil {
		r.Close()
		return nil, fmt.Errorf("config %s: no watcher web", iniPath)
	}
	return r, nil
}

// Run starts the arbiter in the background. Close stops it.
func (r *ring) Run() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.wg.Go(func() {
		defer close(r.runDone)
		r.runErr = r.a.Run(ctx)
	})
	r.wg.Go(func() {
		select {
		case <-r.a.Started():
			r.startedAt <- time.Now()
		case <-r.runDone:
		}
	})
}

// Started returns when Run closed Started (zero if Run ended first).
func (r *ring) Started() time.Time {
	select {
	case t := <-r.startedAt:
		return t
	case <-r.runDone:
		return time.Time{}
	}
}

// Addr is the address the workers serve on.
func (r *ring) Addr() string { return r.a.Sockets()[0].Addr() }

// live returns the workers the watcher is not stopping.
func (r *ring) live(ctx context.Context) ([]int, error) {
	_, procs, err := r.w.Info(ctx)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, p := range procs {
		if !p.Stopping {
			pids = append(pids, p.Pid)
		}
	}
	return pids, nil
}

// Close shuts the arbiter down (every worker stopped and reaped) and waits
// for Run to return. It is a no-op before Run.
func (r *ring) Close() error {
	if r.cancel == nil {
		for _, s := range r.a.Sockets() {
			s.Close()
		}
		return nil
	}
	r.cancel()
	r.wg.Wait()
	return r.runErr
}
