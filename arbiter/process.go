package arbiter

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// worker is one process of a watcher, owned by its watcher's loop.
type worker struct {
	Pid     int
	Wid     int
	Started time.Time

	proc proc
	// expireAt is when max_age recycles it (zero: never).
	expireAt time.Time
	// stopping is set once the arbiter has decided this worker should go;
	// its death is then expected, never counted as a crash.
	stopping bool
	// cause is why the arbiter replaces it on its own account
	// (ReasonUnhealthy, ReasonLimits, ReasonMaxAge), "" otherwise: such a
	// death counts as a restart (restarts.go), a stop's does not.
	cause string
	// retiring marks a worker whose replacement is started first (max_age,
	// graceful reload): it no longer counts toward numprocesses, but it is
	// only signalled once the replacement runs.
	retiring bool
	// killAt is when a stopping worker gets SIGKILL.
	killAt time.Time
	killed bool
	// health ends the worker's health check goroutine; nil: none runs.
	health      func()
	healthFails int // failed checks in a row

	// Readiness (see ready.go). ready is set once, by the loop; it is
	// atomic for the health check goroutine, which probes faster until
	// then.
	ready      atomic.Bool
	readyAt    time.Time // ready = warmup: ready then
	readyBy    time.Time // ready = notify or health: not ready by then fails
	watchdogAt time.Time // watchdog_sec: replaced unless fed by then
	notify     *notifier // ready = notify: its socket; nil otherwise
	status     string    // the worker's last STATUS= notification

	// Resource limits (see limits.go): the CPU time at the last sample,
	// and since when the worker has been over a limit (zero: it is not).
	cpuTicks  uint64
	cpuAt     time.Time
	overSince time.Time
}

// ProcessInfo is a snapshot of one worker, safe to keep.
type ProcessInfo struct {
	Pid      int
	Wid      int
	Started  time.Time
	Stopping bool
	// Ready is false while the worker has not yet shown it is ready (see
	// the watcher's ready mode); always true with ready = spawn.
	Ready bool
	// Status is the last STATUS= the worker sent to its NOTIFY_SOCKET
	// (ready = notify), as systemctl status shows it; "" without one.
	Status string
	// Restarts counts the deaths in its slot (wid) that the watcher
	// counted in Status.Restarts.
	Restarts uint64
}

// info is p as ProcessInfo. Called on the watcher's loop, which owns p.
func (p *worker) info() ProcessInfo {
	return ProcessInfo{Pid: p.Pid, Wid: p.Wid, Started: p.Started, Stopping: p.stopping || p.retiring,
		Ready: p.ready.Load(), Status: p.status}
}

// childrenOf lists the direct children of pid, for stop_children: they may
// have left the worker's process group, which the group signal would miss.
func childrenOf(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var kids []int
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// exitCode renders a wait status as Circus reports it: the exit status, or
// the negative signal number when a signal killed the worker.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}
