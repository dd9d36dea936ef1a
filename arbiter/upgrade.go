package arbiter

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// The upgrade in place, the old image's side: the arbiter stops at a quiet
// point, writes down what the next image of itself needs (Handover), keeps
// the fds it needs open across the exec, and lets the caller exec. The
// other side is restore.go.
//
// Quiet means no watcher has anything under way that lives only in this
// image's goroutines: a spawn (its spawner waits for the child's exec), a
// hook, a reload, a stop. The reaper is held first, so that no exit is
// routed meanwhile (reaper_hold.go); then each loop, asked in turn, either
// says what keeps it busy (and the attempt is given up, everything thawed,
// and tried again a moment later) or writes down its state and waits,
// frozen, for the exec to take the process or a failed one to thaw it.

// upgradeSettle bounds how long an upgrade waits for every watcher to be
// quiet at once; upgradeRetry is the pause between attempts.
const (
	upgradeSettle = 10 * time.Second
	upgradeRetry  = 20 * time.Millisecond
)

// Handover is what the arbiter package hands to the next image of itself:
// JSON-able, with the fds it names kept open (close-on-exec cleared) until
// the exec.
type Handover struct {
	Watchers []WatcherHandover `json:"watchers"`
	// Sockets are the bound sockets, in the configuration's order.
	Sockets []sockets.State `json:"sockets"`
	// Cgroups are the arbiter's cgroup tree and each watcher's cgroups.
	Cgroups *cgroupState `json:"cgroups,omitempty"`
	// Guardian is the guardian the new image adopts.
	Guardian *guardState `json:"guardian,omitempty"`
}

// WatcherHandover is one watcher: its options, as the file gave them and
// as commands changed them, and its loop's state.
type WatcherHandover struct {
	Spec config.WatcherSpec `json:"spec"`
	// Cfg is the options in effect when set changed them; nil: Spec.
	Cfg     *config.WatcherSpec `json:"cfg,omitempty"`
	Runtime bool                `json:"runtime,omitempty"`
	Target  int                 `json:"target"`
	State   State               `json:"state"`
	Workers []WorkerHandover    `json:"workers"`

	SpawnAt     time.Time           `json:"spawn_at,omitzero"`
	SpawnFails  int                 `json:"spawn_fails,omitempty"`
	StartSpawns int                 `json:"start_spawns,omitempty"`
	Crashes     map[int]int         `json:"crashes,omitempty"`
	SlotAt      map[int]time.Time   `json:"slot_at,omitempty"`
	Deaths      map[int][]time.Time `json:"deaths,omitempty"`
	FlapRetries int                 `json:"flap_retries,omitempty"`
	LastFlap    time.Time           `json:"last_flap,omitzero"`
	RetryAt     time.Time           `json:"retry_at,omitzero"`
	StopReason  string              `json:"stop_reason,omitempty"`
	ActiveSince time.Time           `json:"active_since,omitzero"`
	Restarts    map[string]uint64   `json:"restarts,omitempty"`
	SlotResets  map[int]uint64      `json:"slot_restarts,omitempty"`
	LastExit    *ExitInfo           `json:"last_exit,omitempty"`
	// Output is its workers' pipes and kept output (upgrade_output.go).
	Output *OutputHandover `json:"output,omitempty"`
}

// WorkerHandover is one worker, alive or a zombie not yet reaped.
type WorkerHandover struct {
	Pid        int       `json:"pid"`
	Wid        int       `json:"wid"`
	Started    time.Time `json:"started,omitzero"`
	ExpireAt   time.Time `json:"expire_at,omitzero"`
	Stopping   bool      `json:"stopping,omitempty"`
	Cause      string    `json:"cause,omitempty"`
	Retiring   bool      `json:"retiring,omitempty"`
	KillAt     time.Time `json:"kill_at,omitzero"`
	Killed     bool      `json:"killed,omitempty"`
	Ready      bool      `json:"ready"`
	ReadyAt    time.Time `json:"ready_at,omitzero"`
	ReadyBy    time.Time `json:"ready_by,omitzero"`
	WatchdogAt time.Time `json:"watchdog_at,omitzero"`
	Status     string    `json:"status,omitempty"`
	// NotifyFD is the arbiter's end of its NOTIFY_SOCKET (ready =
	// notify), -1 without one.
	NotifyFD int `json:"notify_fd"`
}

// ErrBusy is wrapped by an upgrade that found a watcher busy for longer
// than it waits.
var ErrBusy = errors.New("busy")

// Upgrade hands the arbiter over to a new image of itself. It waits for a
// moment when every watcher is quiet, then calls exec with the state,
// every fd it names kept across an exec; exec returns only if it failed,
// and then everything goes on as before and Upgrade returns its error.
// It runs as the arbiter-wide operations do, one at a time with them.
func (a *Arbiter) Upgrade(ctx context.Context, exec func(*Handover) error) error {
	return a.do(ctx, func(ctx context.Context) error {
		deadline := time.Now().Add(upgradeSettle)
		for {
			h, thaw, busy, err := a.freeze(ctx)
			if err == nil && busy == "" {
				err = a.handOut(h, exec)
			}
			thaw()
			if err != nil || busy == "" {
				return err
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("upgrade: %w: %s, for %s; try again", ErrBusy, busy, upgradeSettle)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(upgradeRetry):
			}
		}
	})
}

// freeze holds the reaper and freezes every watcher loop, collecting their
// states. busy names the first that could not freeze (then nothing is
// frozen once thaw has run). thaw must be called whatever the outcome.
func (a *Arbiter) freeze(ctx context.Context) (h *Handover, thaw func(), busy string, err error) {
	theReaper.hold()
	thawc := make(chan struct{})
	thaw = func() {
		close(thawc)
		theReaper.unhold()
	}
	h = &Handover{}
	for _, w := range a.Watchers() {
		reply := make(chan freezeReply, 1)
		r, cerr := call(ctx, w, freezeReq{reply: reply, thaw: thawc}, reply)
		if cerr != nil {
			return nil, thaw, "", fmt.Errorf("upgrade: watcher %s: %w", w.name, cerr)
		}
		if r.busy != "" {
			return nil, thaw, fmt.Sprintf("watcher %s is %s", w.name, r.busy), nil
		}
		h.Watchers = append(h.Watchers, *r.st)
	}
	return h, thaw, "", nil
}

// handOut keeps every fd the next image needs across the exec, and calls
// exec; if it returns (it failed), the fds are made close-on-exec again.
func (a *Arbiter) handOut(h *Handover, exec func(*Handover) error) error {
	// A worker with the parent-death signal (spawned while no guardian
	// ran) would die with the exec.
	if !a.guarded() {
		return errors.New("upgrade: no guardian guards every worker (see the log): the exec would kill them; try again once one runs")
	}
	var kept []int
	var socks []*sockets.Socket
	guardOut := false // the guardian's keeper has handed it over
	outputBack, err := a.outputsOut(h)
	if err != nil {
		return err
	}
	back := func() {
		for _, fd := range kept {
			handover.CloseOnExec(fd)
		}
		for _, s := range socks {
			s.HandoverBack()
		}
		outputBack()
		if h.Cgroups != nil {
			a.cgroupsBack()
		}
		if guardOut {
			a.guardianBack()
		}
	}
	if h.Cgroups, err = a.cgroupsOut(); err != nil {
		back()
		return fmt.Errorf("upgrade: %w", err)
	}
	if h.Guardian, err = a.guardianOut(); err != nil {
		back() // guardianOut gave it back itself
		return fmt.Errorf("upgrade: %w", err)
	}
	guardOut = true
	if h.Guardian == nil {
		back()
		return errors.New("upgrade: no guardian runs (its last died and the next waits for its pause); try again in a moment")
	}
	for _, s := range a.Sockets() {
		st, err := s.Handover()
		if err != nil {
			back()
			return fmt.Errorf("upgrade: %w", err)
		}
		socks = append(socks, s)
		h.Sockets = append(h.Sockets, st)
	}
	for _, wh := range h.Watchers {
		for _, p := range wh.Workers {
			if p.NotifyFD < 0 {
				continue
			}
			if err := handover.KeepFD(p.NotifyFD); err != nil {
				back()
				return fmt.Errorf("upgrade: notify socket of %d: %w", p.Pid, err)
			}
			kept = append(kept, p.NotifyFD)
		}
	}
	err = exec(h)
	back()
	return err
}

// freezeReq asks the loop to write down its state and wait, frozen, until
// thaw is closed (the exec failed) or the exec takes the process.
type freezeReq struct {
	reply chan<- freezeReply
	thaw  <-chan struct{}
}

func (freezeReq) request() {}

type freezeReply struct {
	st   *WatcherHandover
	busy string // what keeps the loop from freezing now
}

// freeze is freezeReq's handling, on the loop.
func (w *Watcher) freeze(r freezeReq) {
	if why := w.busy(); why != "" {
		r.reply <- freezeReply{busy: why}
		return
	}
	r.reply <- freezeReply{st: w.handoverState()}
	<-r.thaw
}

// busy says what the loop has under way that a hand-over would lose, ""
// when nothing.
func (w *Watcher) busy() string {
	switch {
	case w.state == Stopping:
		return "stopping"
	case w.reload != nil || len(w.queued) > 0:
		return "reloading"
	case len(w.launching) > 0 || len(w.spawning) > 0:
		return "spawning"
	case w.hooksOut > 0 || w.afterSpawns > 0 || w.gate != 0:
		return "running a hook"
	case len(w.exitc) > 0 || len(w.early) > 0:
		return "taking an exit"
	}
	return ""
}

// handoverState writes the loop's state down.
func (w *Watcher) handoverState() *WatcherHandover {
	st := &WatcherHandover{
		Spec:        w.spec.Spec(),
		Runtime:     w.runtime,
		Target:      w.target,
		State:       w.state,
		SpawnAt:     w.spawnAt,
		SpawnFails:  w.spawnFails,
		StartSpawns: w.startSpawns,
		Crashes:     maps.Clone(w.crashes),
		SlotAt:      maps.Clone(w.slotAt),
		Deaths:      maps.Clone(w.deaths),
		FlapRetries: w.flapRetries,
		LastFlap:    w.lastFlap,
		RetryAt:     w.retryAt,
		StopReason:  w.stopReason,
		ActiveSince: w.activeSince,
		Restarts:    maps.Clone(w.restarts.byReason),
		SlotResets:  maps.Clone(w.restarts.bySlot),
		LastExit:    w.restarts.last,
	}
	if w.cfg != w.spec {
		c := w.cfg.Spec()
		c.Options = maps.Clone(c.Options)
		st.Cfg = &c
	}
	for _, p := range w.procs {
		st.Workers = append(st.Workers, p.handoverState())
	}
	slices.SortFunc(st.Workers, func(x, y WorkerHandover) int { return x.Wid - y.Wid })
	return st
}

func (p *worker) handoverState() WorkerHandover {
	wh := WorkerHandover{
		Pid: p.Pid, Wid: p.Wid, Started: p.Started, ExpireAt: p.expireAt,
		Stopping: p.stopping, Cause: p.cause, Retiring: p.retiring, KillAt: p.killAt, Killed: p.killed,
		Ready: p.ready.Load(), ReadyAt: p.readyAt, ReadyBy: p.readyBy, WatchdogAt: p.watchdogAt,
		Status: p.status, NotifyFD: -1,
	}
	if p.notify != nil {
		if rc, err := p.notify.conn.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { wh.NotifyFD = int(fd) })
		}
	}
	return wh
}
