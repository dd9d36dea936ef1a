package arbiter

import "fmt"

// Critical watchers: a watcher with critical = true that gives up for good
// (the flapping limit's max_retry, or max_retry failed spawns in a row)
// ends the arbiter. Run stops every watcher in the one shutdown sequence
// and returns a *CriticalError naming it, so that a container or a unit
// whose main job is dead is restarted by the engine above, rather than
// left up and serving nothing.

// CriticalError is what [Arbiter.Run] returns when a critical watcher gave
// up.
type CriticalError struct {
	Watcher string
	Reason  string // why it gave up, as its status said
}

func (e *CriticalError) Error() string {
	return fmt.Sprintf("critical watcher %s gave up: %s", e.Watcher, e.Reason)
}

// gaveUp is called on w's loop when w stops for good on its own account
// (and has logged why): a critical watcher tells the arbiter, which logs
// that it stops, without waiting (the first one to give up ends it; the
// channel has room for that one).
func (w *Watcher) gaveUp(reason string) {
	if !w.cfg.Critical || w.criticalc == nil || w.final {
		return
	}
	select {
	case w.criticalc <- &CriticalError{Watcher: w.name, Reason: reason}:
	default: // another has already ended the arbiter
	}
}
