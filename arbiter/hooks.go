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
// on a goroutine of the watcher's (hookRunner). The loop waits for those
// whose outcome or completion it needs before going on: before_start,
// after_start, before_spawn, after_spawn, before_stop and before_signal.
// That holds only this watcher's loop, at most hook_timeout for each hook
// queued ahead; other watchers never wait. The others (after_stop,
// after_signal, before_reap, after_reap) report what already happened, so
// the loop queues them and goes on. before_reap runs after the reap too:
// the reaper has waited for the worker before the loop hears of it.

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
	reply  chan error // nil: nobody waits
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

// hook runs the watcher's hook name, if it has one that can run, with vars
// (KEY=VALUE) in its environment. With wait, the loop waits for it and
// gets its failure: nil when it passed, or when its failures are ignored
// (the ", true" flag). Without, it is queued and hook returns nil at once.
func (w *Watcher) hook(name string, wait bool, vars ...string) error {
	h, ok := w.cfg.Hooks[name]
	if !ok || h.Python {
		return nil
	}
	vars = append([]string{"CIRCUS_HOOK=" + name, "CIRCUS_WATCHER=" + w.name}, vars...)
	run := hookRun{name: name, ignore: h.IgnoreErrors}
	run.cmd, run.err = newCommand(w.cfg, h.Command, vars, h.Timeout)
	if wait {
		run.reply = make(chan error, 1)
	}
	if w.hooks.push(run) {
		w.hooks.wg.Go(w.runHooks)
	}
	if !wait {
		return nil
	}
	// The reaper's send to exitc blocks once it is full, and the reaper
	// must stay free (it reaps this very hook): exits that arrive while
	// the loop waits are kept, and handled once the current step is done.
	for {
		select {
		case err := <-run.reply:
			return err
		case st := <-w.exitc:
			w.laterExits = append(w.laterExits, st)
		}
	}
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
		if run.reply != nil {
			if run.ignore {
				err = nil
			}
			run.reply <- err
		}
	}
}

// workerVars are the variables naming worker p.
func workerVars(p *worker) []string {
	return []string{"CIRCUS_PID=" + strconv.Itoa(p.Pid), "CIRCUS_WID=" + strconv.Itoa(p.Wid)}
}

// beforeStart runs before_start as the stopped watcher starts. When it
// fails, the start is refused: reply and every start waiting get the
// reason, and the watcher stays stopped.
func (w *Watcher) beforeStart(reply chan<- error) bool {
	err := w.hook(hookBeforeStart, true)
	if err == nil {
		return true
	}
	err = fmt.Errorf("watcher %s: start refused: %w", w.name, err)
	if reply != nil {
		reply <- err
	}
	w.replyStart(err)
	return false
}

// afterStart runs after_start once the pool is spawned, before the watcher
// is active. When it fails, the watcher stops and the start fails.
func (w *Watcher) afterStart() bool {
	if err := w.hook(hookAfterStart, true); err != nil {
		w.beginStop(err.Error())
		return false
	}
	return true
}

// beforeSpawn runs before_spawn for a worker about to start in slot wid.
// When it fails, nothing is spawned and the watcher stops (a reload in
// progress is abandoned instead, its old workers kept).
func (w *Watcher) beforeSpawn(wid int) bool {
	err := w.hook(hookBeforeSpawn, true, "CIRCUS_WID="+strconv.Itoa(wid))
	if err == nil {
		return true
	}
	if !w.abortReload(err) {
		w.beginStop(err.Error())
	}
	return false
}

// afterSpawn runs after_spawn for the new worker p. When it fails, p is
// stopped and so is the watcher.
func (w *Watcher) afterSpawn(p *worker) bool {
	err := w.hook(hookAfterSpawn, true, workerVars(p)...)
	if err == nil {
		return true
	}
	w.stopProc(p)
	w.beginStop(err.Error())
	return false
}

// beforeStop runs before_stop as the watcher starts stopping, before any
// worker is signalled; its failure is ignored, as in Circus.
func (w *Watcher) beforeStop() { _ = w.hook(hookBeforeStop, true) }

// afterStop queues after_stop once the watcher has stopped.
func (w *Watcher) afterStop() { _ = w.hook(hookAfterStop, false) }

// beforeSignal runs before_signal before sig goes to worker p, and reports
// whether to send it: not when the hook failed, unless sig is SIGKILL.
func (w *Watcher) beforeSignal(p *worker, sig syscall.Signal) bool {
	err := w.hook(hookBeforeSignal, true, append(workerVars(p), "CIRCUS_SIGNUM="+strconv.Itoa(int(sig)))...)
	if err == nil || sig == syscall.SIGKILL {
		return true
	}
	w.log.Warn("signal not sent", "pid", p.Pid, "signal", sig, "err", err)
	return false
}

// afterSignal queues after_signal for sig to worker p, sent or not.
func (w *Watcher) afterSignal(p *worker, sig syscall.Signal) {
	_ = w.hook(hookAfterSignal, false, append(workerVars(p), "CIRCUS_SIGNUM="+strconv.Itoa(int(sig)))...)
}

// reapHooks queues before_reap and after_reap for worker p, reaped with
// st.
func (w *Watcher) reapHooks(p *worker, st exitStatus) {
	if len(w.cfg.Hooks) == 0 {
		return
	}
	now := "CIRCUS_TIME=" + strconv.FormatFloat(float64(time.Now().UnixMicro())/1e6, 'f', 6, 64)
	_ = w.hook(hookBeforeReap, false, append(workerVars(p), now)...)
	_ = w.hook(hookAfterReap, false, append(workerVars(p), now,
		"CIRCUS_EXIT_CODE="+strconv.Itoa(exitCode(st.status)),
		"CIRCUS_PROCESS_STATUS="+strconv.Itoa(int(st.status)))...)
}

// signalOne sends sig to worker p alone, between its signal hooks: the
// signal command's way to a worker.
func (w *Watcher) signalOne(p *worker, sig syscall.Signal) error {
	defer w.afterSignal(p, sig)
	if !w.beforeSignal(p, sig) {
		return nil
	}
	return p.proc.Signal(sig)
}
