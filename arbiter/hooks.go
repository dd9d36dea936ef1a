package arbiter

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// A watcher's hooks.NAME commands run at the points of its life where
// Circus calls its hooks (reference circus-0.19.md §7.1), with the hook's
// arguments in the environment: CIRCUS_HOOK and CIRCUS_WATCHER always;
// CIRCUS_PID and CIRCUS_WID for a worker; CIRCUS_SIGNUM for the signal
// hooks; CIRCUS_TIME (Unix seconds) for the reap hooks, and CIRCUS_EXIT_CODE
// (Circus's: the negative signal number for a killed worker) and
// CIRCUS_PROCESS_STATUS (the raw wait status) for after_reap. A hook fails
// when it exits non-zero, is killed, cannot start, or outlives
// hook_timeout (its process group is then killed); that is Circus's
// "returned False". Each run publishes hook_success or hook_failure.
//
// Hooks run one at a time, in the order the watcher's loop reached them,
// on a goroutine of the watcher's (hookRunner). The loop never waits for
// one: a step that needs a hook's outcome or completion (before_start,
// after_start, before_spawn, after_spawn, before_stop, before_signal)
// becomes a state, and the loop goes on with it when the hook's result
// arrives on hookc (handleHook), while it keeps taking requests, exits and
// deadlines: a SIGKILL escalation is never late because a hook runs
// (issue 14, item 6), and a stop overtakes a start that waits for
// before_start. The others (after_stop, after_signal, before_reap,
// after_reap) report what already happened, and nothing waits for them.
// before_reap runs after the reap too: the reaper has waited for the
// worker before the loop hears of it.

// The hooks Circus calls, by their configuration names.
const (
	hookBeforeStart  = "before_start"
	hookAfterStart   = "after_start"
	hookBeforeSpawn  = "before_spawn"
	hookAfterSpawn   = "after_spawn"
	hookBeforeStop   = "before_stop"
	hookAfterStop    = "after_stop"
	hookBeforeSignal = "before_signal"
	hookAfterSignal  = "after_signal"
	hookBeforeReap   = "before_reap"
	hookAfterReap    = "after_reap"
)

// hookRunner is a watcher's queue of hook runs and the goroutine that
// works through it, started when a run is queued and none runs, ending
// when the queue is empty. The watcher's loop waits for it when it ends.
type hookRunner struct {
	wg sync.WaitGroup
	mu sync.Mutex
	// guarded by mu
	queue []hookRun
	busy  bool
}

// hookRun is one queued run of a hook.
type hookRun struct {
	name   string
	cmd    *command // nil when it could not be prepared: err says why
	err    error
	ignore bool
	then   *hookDone // nil: the loop goes on without the result
}

// hookStep is what the loop does once a hook it goes on after has run.
type hookStep int

const (
	stepStart   hookStep = iota + 1 // before_start: then spawn, or stay stopped
	stepActive                      // after_start: then active, or stop
	stepSpawn                       // before_spawn: then spawn the slot, or stop
	stepSpawned                     // after_spawn: a failure stops the worker and the watcher
	stepStop                        // before_stop: then signal the workers
	stepSignal                      // before_signal: then send the signal, unless it failed
)

func (s hookStep) hookName() string {
	switch s {
	case stepStart:
		return hookBeforeStart
	case stepActive:
		return hookAfterStart
	case stepSpawn:
		return hookBeforeSpawn
	case stepSpawned:
		return hookAfterSpawn
	case stepStop:
		return hookBeforeStop
	case stepSignal:
		return hookBeforeSignal
	}
	return ""
}

// hookDone is the result of a hook the loop goes on after, with what it
// needs to go on: the gate's sequence number, the worker or slot, the
// signal. err is nil when the hook passed or its failures are ignored.
type hookDone struct {
	step     hookStep
	seq      uint64
	pid, wid int
	sig      syscall.Signal
	wait     *signalWait // a signal command's: the signal goes to the worker alone, not its group
	err      error
}

// push queues run and reports whether a goroutine must be started for it.
func (r *hookRunner) push(run hookRun) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.queue = append(r.queue, run)
	if r.busy {
		return false
	}
	r.busy = true
	return true
}

// pop takes the next run; ok is false when the queue is empty, and the
// caller's goroutine must then end.
func (r *hookRunner) pop() (run hookRun, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.queue) == 0 {
		r.busy = false
		return hookRun{}, false
	}
	run = r.queue[0]
	r.queue[0] = hookRun{}
	r.queue = r.queue[1:]
	return run, true
}

// wait waits until no hook runs or is queued. Only the loop queues, so once
// it has ended this stays true.
func (r *hookRunner) wait() { r.wg.Wait() }

// hook queues the watcher's hook name, if it has one that can run, with
// vars (KEY=VALUE) in its environment; nothing waits for it.
func (w *Watcher) hook(name string, vars ...string) { w.queueHook(name, nil, vars) }

// hookThen queues the watcher's hook name as hook does and reports whether
// it did: the loop then goes on with then, carrying the hook's failure,
// once it has run (handleHook). false: the watcher has no such hook, and
// the caller goes on at once.
func (w *Watcher) hookThen(name string, then hookDone, vars ...string) bool {
	return w.queueHook(name, &then, vars)
}

// hookGate waits, as the watcher-wide step step, for hook name; it reports
// false, setting no gate, when the watcher has no such hook.
func (w *Watcher) hookGate(step hookStep, name string) bool {
	w.gateSeq++
	if !w.hookThen(name, hookDone{step: step, seq: w.gateSeq}) {
		return false
	}
	w.gate = step
	return true
}

func (w *Watcher) queueHook(name string, then *hookDone, vars []string) bool {
	h, ok := w.cfg.Hooks[name]
	if !ok || h.Python {
		return false
	}
	vars = append([]string{"CIRCUS_HOOK=" + name, "CIRCUS_WATCHER=" + w.name}, vars...)
	run := hookRun{name: name, ignore: h.IgnoreErrors, then: then}
	run.cmd, run.err = newCommand(w.cfg, h.Command, vars, h.Timeout)
	if run.cmd != nil {
		run.cmd.guard = w.guard
	}
	if then != nil {
		// The loop does not end while a result is owed to it, so the
		// runner's send on hookc is always taken.
		w.hooksOut++
	}
	if w.hooks.push(run) {
		w.hooks.wg.Go(w.runHooks)
	}
	return true
}

// runHooks works through the queue until it is empty.
func (w *Watcher) runHooks() {
	for {
		run, ok := w.hooks.pop()
		if !ok {
			return
		}
		start := time.Now()
		var out []byte
		err := run.err
		if err == nil {
			out, err = run.cmd.run(context.Background())
		}
		took := time.Since(start).Round(time.Millisecond)
		if err == nil {
			w.log.Debug("hook passed", "hook", run.name, "took", took, "output", string(out))
			w.emit(pubsub.Event{Kind: pubsub.HookSuccess, Hook: run.name})
		} else {
			err = fmt.Errorf("hooks.%s: %w", run.name, err)
			w.log.Warn("hook failed", "hook", run.name, "took", took, "ignored", run.ignore, "err", err, "output", string(out))
			w.emit(pubsub.Event{Kind: pubsub.HookFailure, Hook: run.name, Reason: err.Error()})
		}
		if run.then != nil {
			d := *run.then
			if !run.ignore {
				d.err = err
			}
			w.hookc <- d
		}
	}
}

// workerVars are the variables naming worker p.
func workerVars(p *worker) []string {
	return []string{"CIRCUS_PID=" + strconv.Itoa(p.Pid), "CIRCUS_WID=" + strconv.Itoa(p.Wid)}
}

// signalVars are the variables of a signal hook for sig to worker p.
func signalVars(p *worker, sig syscall.Signal) []string {
	return append(workerVars(p), "CIRCUS_SIGNUM="+strconv.Itoa(int(sig)))
}

// reapHooks queues before_reap and after_reap for worker p, reaped with
// st.
func (w *Watcher) reapHooks(p *worker, st exitStatus) {
	if len(w.cfg.Hooks) == 0 {
		return
	}
	now := "CIRCUS_TIME=" + strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64)
	w.hook(hookBeforeReap, append(workerVars(p), now)...)
	w.hook(hookAfterReap, append(workerVars(p), now,
		"CIRCUS_EXIT_CODE="+strconv.Itoa(exitCode(st.status)),
		"CIRCUS_PROCESS_STATUS="+strconv.Itoa(int(st.status)))...)
}

// signalOne sends sig to worker p alone, between its signal hooks: the
// signal command's way to a worker. With before_signal the signal goes
// once the hook has passed; sw is told when it has gone.
func (w *Watcher) signalOne(p *worker, sig syscall.Signal, sw *signalWait) {
	vars := signalVars(p, sig)
	sw.left++
	if sig != syscall.SIGKILL && w.hookThen(hookBeforeSignal, hookDone{step: stepSignal, pid: p.Pid, sig: sig, wait: sw}, vars...) {
		return
	}
	if sig == syscall.SIGKILL {
		w.hook(hookBeforeSignal, vars...)
	}
	w.sendAlone(p, sig, sw)
	w.hook(hookAfterSignal, vars...)
}

// sendAlone sends sig to p itself and tells sw.
func (w *Watcher) sendAlone(p *worker, sig syscall.Signal, sw *signalWait) {
	if err := p.proc.Signal(sig); err != nil {
		sw.fail(fmt.Errorf("signal %d: %w", p.Pid, err))
	}
	sw.done()
}
