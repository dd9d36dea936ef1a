package arbiter

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// How failures are retried. A spawn that fails for a reason that passes
// (the host is out of pids, fds or memory for a moment, a cgroup join
// failed) is retried for as long as it lasts, with a capped, jittered,
// growing delay, and never counts toward max_retry: a pool must come back
// by itself once the host does (issue 14, item 3). Any other failed spawn
// counts, and max_retry of them in a row stop the watcher, as in Circus. A
// worker that dies on its own is replaced at once, but a slot whose
// workers keep dying young is paced (a crash loop), under Circus's
// flapping limit, which keeps its meaning.

const (
	// backoffFirst and backoffMax bound the delay before a spawn that
	// failed for a passing reason is tried again.
	backoffFirst = 100 * time.Millisecond
	backoffMax   = 30 * time.Second
	// crashStable is how long a worker must have run for its death to
	// start a new crash count for its slot: one that served a while is
	// replaced at once, as Circus does; one that dies young, again and
	// again, is a crash loop.
	crashStable = time.Second
	// crashMaxDefault caps the crash-loop pause without restart_max_delay:
	// long enough to turn a busy loop into a trickle, short enough that a
	// worker an operator kills again and again is back within a second.
	crashMaxDefault = time.Second
)

// transientErrnos are the errors a spawn may meet that say nothing about
// the program: the host lacks something for now.
var transientErrnos = []syscall.Errno{syscall.EAGAIN, syscall.EMFILE, syscall.ENFILE, syscall.ENOMEM, syscall.ENOBUFS}

// errCgroupJoin marks a spawn whose child could not join its cgroup (a
// cgroup being removed, a pids limit reached): retried as a passing fault.
var errCgroupJoin = errors.New("cgroup join failed")

// cgroupJoinError is a spawn's cgroup join failure, as the spawner words
// it, that is errCgroupJoin too.
type cgroupJoinError struct{ err error }

func (e cgroupJoinError) Error() string        { return e.err.Error() }
func (e cgroupJoinError) Unwrap() error        { return e.err }
func (e cgroupJoinError) Is(target error) bool { return target == errCgroupJoin }

// transientReason names the passing cause of err ("EMFILE"), or returns
// "" when err is not one.
func transientReason(err error) string {
	for _, e := range transientErrnos {
		if errors.Is(err, e) {
			return errnoName(e)
		}
	}
	if errors.Is(err, errCgroupJoin) {
		return "cgroup join"
	}
	return ""
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EAGAIN:
		return "EAGAIN"
	case syscall.EMFILE:
		return "EMFILE"
	case syscall.ENFILE:
		return "ENFILE"
	case syscall.ENOMEM:
		return "ENOMEM"
	case syscall.ENOBUFS:
		return "ENOBUFS"
	}
	return e.Error()
}

// spawnFailed handles a spawn of slot wid that failed with err: a passing
// fault is retried after a backoff; anything else counts toward max_retry
// and is retried after a growing pause (never the busy loop Circus falls
// into with max_retry = -1); after max_retry failures in a row it
// abandons a reload in progress, or else stops the watcher. Start waiters
// learn of the first failure either way.
func (w *Watcher) spawnFailed(wid int, err error) {
	now := time.Now()
	if reason := transientReason(err); reason != "" {
		w.transient++
		w.transErr = err
		delay := min(backoffFirst<<min(w.transient-1, 10), backoffMax)
		// Jitter: pools that met the same shortage do not retry in step.
		delay = delay/2 + rand.N(delay/2+1)
		w.spawnAt = now.Add(delay)
		w.log.Warn("spawn failed for a passing reason; retrying", "wid", wid, "reason", reason, "err", err,
			"attempt", w.transient, "retry_in", delay.Round(time.Millisecond))
		if w.transient == 1 {
			w.emit(pubsub.Event{Kind: pubsub.Backoff, Wid: wid, Reason: fmt.Sprintf("%s: %v", reason, err)})
		}
		w.replyStart(fmt.Errorf("watcher %s: %w: %s: %w", w.name, errRetrying, reason, err))
		return
	}
	w.spawnFails++
	w.log.Error("spawn failed", "wid", wid, "err", err, "attempt", w.spawnFails)
	if w.cfg.MaxRetry >= 0 && w.spawnFails > w.cfg.MaxRetry {
		if w.abortReload(err) {
			return
		}
		w.log.Error("giving up", "reason", "spawn failed", "attempts", w.spawnFails)
		reason := fmt.Sprintf("spawn failed %d times: %v", w.spawnFails, err)
		w.beginStop(reason)
		w.gaveUp(reason)
		return
	}
	w.replyStart(fmt.Errorf("watcher %s: %w: %w", w.name, errRetrying, err))
	w.spawnAt = now.Add(min(100*time.Millisecond<<min(w.spawnFails-1, 6), 5*time.Second))
}

// crashed paces the replacement of p, which died unexpectedly at now
// with status: at once, unless its slot's workers keep dying young by
// themselves (a crash loop), whose n-th death in a row waits
// restart_delay × 2^(n-2), capped. A SIGKILL comes from outside (an
// operator, the OOM killer): it is replaced at once and does not count,
// though the flapping limit still does.
func (w *Watcher) crashed(p *worker, status unix.WaitStatus, now time.Time) {
	if status.Signaled() && status.Signal() == unix.SIGKILL {
		return
	}
	if w.crashes == nil {
		w.crashes = map[int]int{}
	}
	if now.Sub(p.Started) >= crashStable {
		w.crashes[p.Wid] = 1
		return
	}
	w.crashes[p.Wid]++
	n := w.crashes[p.Wid]
	if n < 2 || w.cfg.RestartDelay <= 0 {
		return
	}
	delay := min(w.cfg.RestartDelay<<min(n-2, 20), w.crashMax())
	if w.slotAt == nil {
		w.slotAt = map[int]time.Time{}
	}
	w.slotAt[p.Wid] = now.Add(delay)
	w.log.Warn("crash loop: restart delayed", "wid", p.Wid, "deaths_in_a_row", n, "restart_in", delay)
}

// crashMax is the longest crash-loop pause: restart_max_delay, or 1 s, and
// short enough that flapping.attempts deaths still fit in flapping.window,
// so that the flapping limit acts on a program that cannot stay up, as in
// Circus, only no longer within milliseconds.
func (w *Watcher) crashMax() time.Duration {
	c := w.cfg
	switch {
	case c.RestartMaxDelay > 0:
		return c.RestartMaxDelay
	case c.FlapAttempts > 0:
		return max(min(c.FlapWindow/time.Duration(c.FlapAttempts), crashMaxDefault), c.RestartDelay)
	}
	return crashMaxDefault
}

// flapped records an unexpected death of the worker in slot wid and, when
// that slot died too often within the window, stops the watcher and
// schedules a retry. Deaths are counted per slot, so a pool that loses many
// workers at once (an OOM kill, a pkill) is not taken for a crash loop,
// while a program that cannot stay up trips the limit in every slot. With
// one worker this is Circus's Flapping plugin exactly. Deaths the arbiter
// caused (stop, restart, max_age) never count (unlike Circus #965).
func (w *Watcher) flapped(wid int) bool {
	c := w.cfg
	if c.FlapAttempts <= 0 || w.state == Stopping {
		return false
	}
	now := time.Now()
	if w.deaths == nil {
		w.deaths = map[int][]time.Time{}
	}
	keep := w.deaths[wid][:0]
	for _, t := range w.deaths[wid] {
		if now.Sub(t) < c.FlapWindow {
			keep = append(keep, t)
		}
	}
	w.deaths[wid] = append(keep, now)
	if len(w.deaths[wid]) < c.FlapAttempts {
		return false
	}
	w.deaths = nil
	// A watcher that ran a whole window after its last retry starts a new
	// episode rather than using up its retries.
	if now.Sub(w.lastFlap) > c.FlapRetryIn+c.FlapWindow {
		w.flapRetries = 0
	}
	w.lastFlap = now
	w.flapRetries++
	reason := fmt.Sprintf("%d deaths within %s", c.FlapAttempts, c.FlapWindow)
	if c.FlapMaxRetry >= 0 && w.flapRetries > c.FlapMaxRetry {
		reason += fmt.Sprintf("; gave up after %d retries", c.FlapMaxRetry)
		w.log.Error("flapping: stopped for good", "reason", reason)
		w.emit(pubsub.Event{Kind: pubsub.Flapping, Reason: reason})
		w.beginStop("flapping: " + reason)
		w.gaveUp("flapping: " + reason)
		return true
	}
	w.log.Error("flapping: stopped", "reason", reason, "retry_in", c.FlapRetryIn, "retry", w.flapRetries, "max_retry", c.FlapMaxRetry)
	w.emit(pubsub.Event{Kind: pubsub.Flapping, Reason: reason})
	w.beginStop("flapping: " + reason)
	w.retryAt = now.Add(c.FlapRetryIn)
	return true
}

// detail says what the watcher does or waits for beyond its Circus state,
// and when it next tries (see Status).
func (w *Watcher) detail(now time.Time) (string, time.Time) {
	in := func(t time.Time) string {
		// "6.2s", "400ms": what a person reads, not "6.213497s".
		d := max(t.Sub(now), 0)
		if d >= time.Second {
			return d.Round(100 * time.Millisecond).String()
		}
		return d.Round(time.Millisecond).String()
	}
	short := w.live() < w.target && (w.state == Starting || w.state == Active)
	pause := w.slotPause(now)
	switch {
	case w.state == Stopped && !w.retryAt.IsZero():
		return fmt.Sprintf("flapping, retry %d of %d in %s", w.flapRetries, w.cfg.FlapMaxRetry, in(w.retryAt)), w.retryAt
	case w.state == Stopped:
		return w.stopReason, time.Time{}
	case w.gate != 0:
		return "waiting for hook " + w.gate.hookName(), time.Time{}
	case w.transient > 0 && short:
		return fmt.Sprintf("backoff: %s, retry in %s", transientReason(w.transErr), in(w.spawnAt)), w.spawnAt
	case w.spawnFails > 0 && short && now.Before(w.spawnAt):
		return fmt.Sprintf("spawn failed %d times, retry in %s", w.spawnFails, in(w.spawnAt)), w.spawnAt
	case short && !pause.IsZero():
		return "crash loop: restart in " + in(pause), pause
	case w.reload != nil:
		return "reloading", time.Time{}
	}
	return "", time.Time{}
}

// endCrashPause lifts a crash loop's pauses: an operator's reload, resize
// or start wants its workers now, not when the loop would have retried.
func (w *Watcher) endCrashPause() {
	w.slotAt, w.crashes = nil, nil
}

// nextSlot is the slot the next worker starts in: the lowest free one up
// to numprocesses that no crash-loop pause holds (a slot that keeps
// crashing never holds the others back), or, when every slot up to
// numprocesses is taken, the lowest free one above. ok is false when the
// free slots are all paused.
func (w *Watcher) nextSlot(now time.Time) (wid int, ok bool) {
	used := w.usedSlots()
	paused := false
	for wid := 1; wid <= w.target; wid++ {
		if used[wid] {
			continue
		}
		if now.Before(w.slotAt[wid]) {
			paused = true
			continue
		}
		return wid, true
	}
	if paused {
		return 0, false
	}
	return w.freeWid(), true
}

// slotPause is the earliest end, after now, of a crash-loop pause of a
// free slot, or zero; with now zero, of any, passed or not.
func (w *Watcher) slotPause(now time.Time) time.Time {
	used := w.usedSlots()
	var next time.Time
	for wid, at := range w.slotAt {
		if used[wid] || wid > w.target || !now.Before(at) {
			continue
		}
		if next.IsZero() || at.Before(next) {
			next = at
		}
	}
	return next
}
