package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// run is one chaos run: the arbiter, the configuration as the file says
// it, and what the arbiter should be doing (the model).
//
// The model is each watcher's target (the numprocesses the arbiter should
// hold it at). One actor per watcher changes its watcher's target with
// incr and decr; the reload actor changes the file and, through a reload,
// the targets of the watchers it changed. A watcher whose file entry did
// not change keeps its target across a reload, as in Circus. So that the
// model stays exact, watcher actors hold cfgMu for reading during each
// operation and the reload actor holds it for writing during each reload:
// a reload never overlaps an incr. The killer needs no lock: a SIGKILL
// changes no target.
type run struct {
	// Set before the actors start; the recorders are safe for concurrent use.
	o        options
	files    runFiles
	a        *arbiterProc
	rngs     []*rand.Rand                     // one per actor: see rng
	trace    func(format string, args ...any) // to the trace file, kept when the run fails
	fails    *failures
	lat      *latencies
	ops      counter
	kills    counter
	expected counter // error replies that the killer caused, by command

	cfgMu   sync.RWMutex
	specs   []*watcherSpec  // the file: the slice is fixed, its entries' n, gen and slow change under cfgMu
	pending map[string]bool // watchers whose last reload failed: they run an older entry than the file's

	mu     sync.Mutex
	target map[string]int // the model
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// targets renders the model for the trace.
func (r *run) targets() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, s := range r.specs {
		fmt.Fprintf(&b, "%s=%d ", s.name, r.target[s.name])
	}
	return strings.TrimSpace(b.String())
}

// call sends one command through c, records its latency, and checks the
// first invariant: every command is answered within o.bound. An error
// reply is a broken invariant too: every command the run sends is valid.
func (r *run) call(ctx context.Context, c *control.Client, cmd string, props map[string]any) (json.RawMessage, error) {
	cctx, cancel := context.WithTimeout(ctx, r.o.bound)
	defer cancel()
	t0 := time.Now()
	raw, err := c.Call(cctx, cmd, props)
	d := time.Since(t0)
	if ctx.Err() != nil || r.a.Exited() {
		// The caller's context ended (Ctrl-C), not the bound; or the
		// arbiter died, which is reported once: nothing to judge.
		return nil, err
	}
	r.lat.add(cmd, d, err)
	var ce *control.CallError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		r.fails.add("%s %v: no reply within %v", cmd, props, r.o.bound)
	case errors.As(err, &ce) && allKilledBeforeReady(strings.Split(ce.Reason, "\n")):
		r.expected.inc(cmd)
	case err != nil:
		r.fails.add("%s %v: %v (after %v)", cmd, props, err, round(d))
	}
	if cmd != "list" && cmd != "numprocesses" && cmd != "status" {
		r.trace("%s %v: %v in %v", cmd, props, errText(err), round(d))
	}
	return raw, err
}

func (r *run) getTarget(name string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.target[name]
}

func (r *run) setTarget(name string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.target[name] = n
}

// resync takes the arbiter's numprocesses as the target after a command
// failed, when what it did is unknown, so that one failure is reported
// once rather than again at every later check.
//
// The target is the watcher's numprocesses option, as resized, not the
// count of its workers: a start that failed a first attempt answers so
// while the watcher retries on toward its target.
func (r *run) resync(ctx context.Context, c *control.Client, name string) {
	raw, err := r.call(ctx, c, "options", map[string]any{"name": name})
	if err != nil {
		return
	}
	var v struct {
		Options struct {
			N int `json:"numprocesses"`
		} `json:"options"`
	}
	if json.Unmarshal(raw, &v) == nil {
		r.setTarget(name, v.Options.N)
	}
}

func (r *run) numprocesses(ctx context.Context, c *control.Client, name string) (int, error) {
	raw, err := r.call(ctx, c, "numprocesses", map[string]any{"name": name})
	if err != nil {
		return 0, err
	}
	var v struct {
		N int `json:"numprocesses"`
	}
	err = json.Unmarshal(raw, &v)
	return v.N, err
}

// status returns a watcher's state as status NAME answers it: "active",
// "stopped"...
func (r *run) status(ctx context.Context, c *control.Client, name string) (string, error) {
	raw, err := r.call(ctx, c, "status", map[string]any{"name": name})
	if err != nil {
		return "", err
	}
	var v struct {
		Status string `json:"status"`
	}
	err = json.Unmarshal(raw, &v)
	return v.Status, err
}

func (r *run) list(ctx context.Context, c *control.Client, name string) ([]int, error) {
	raw, err := r.call(ctx, c, "list", map[string]any{"name": name})
	if err != nil {
		return nil, err
	}
	var v struct {
		Pids []int `json:"pids"`
	}
	err = json.Unmarshal(raw, &v)
	return v.Pids, err
}

// rng returns the generator of actor i: each actor draws from its own
// stream of the seed, so that its sequence of operations does not depend
// on how the others are scheduled (their timing still does).
func (r *run) rng(i uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(r.o.seed), i))
}

// between returns a duration in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}
