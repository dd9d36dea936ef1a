package arbiter

import (
	"fmt"

	"github.com/ringmaster-dev/ringmaster/logs"
)

// The workers' output across an upgrade in place: the old image stops
// reading every watcher's pipes (logs.Output.Detach) and hands them over
// with the line each reader had begun and the output kept for tail and
// logs; the new image reads on from there. Destinations are not handed
// over: the new image opens them again from the configuration.

// OutputHandover is a watcher's worker output as the old image left it.
type OutputHandover struct {
	Pipes []logs.PipeState `json:"pipes,omitempty"`
	Ring  logs.RingState   `json:"ring"`
}

// outputsOut stops reading the workers' output of every watcher in h and
// writes it down there, every fd kept across an exec. back starts reading
// again (the exec failed); on an error nothing is left stopped.
func (a *Arbiter) outputsOut(h *Handover) (back func(), err error) {
	var stopped []*logs.Output
	back = func() {
		for _, o := range stopped {
			o.Resume()
		}
	}
	for i := range h.Watchers {
		wh := &h.Watchers[i]
		w := a.Watcher(wh.Spec.Name)
		if w == nil {
			back()
			return nil, fmt.Errorf("upgrade: watcher %s gone while frozen", wh.Spec.Name)
		}
		pipes, err := w.out.Detach()
		if err != nil {
			back()
			return nil, fmt.Errorf("upgrade: watcher %s: %w", w.name, err)
		}
		stopped = append(stopped, w.out)
		ring, err := w.out.RingState()
		if err != nil {
			back()
			return nil, fmt.Errorf("upgrade: watcher %s: %w", w.name, err)
		}
		wh.Output = &OutputHandover{Pipes: pipes, Ring: ring}
	}
	return back, nil
}

// adoptOutput reads on the pipes of w's workers that the old image handed
// over, with the output it kept. What cannot be adopted is logged: the
// watcher runs all the same, without that output.
func (w *Watcher) adoptOutput(oh *OutputHandover) {
	if oh == nil {
		return
	}
	if err := w.out.RestoreRing(oh.Ring); err != nil {
		w.log.Warn("hand-over: recent output not kept", "err", err)
	}
	if err := w.out.Adopt(oh.Pipes); err != nil {
		w.log.Error("hand-over: worker output not adopted", "err", err)
	}
}
