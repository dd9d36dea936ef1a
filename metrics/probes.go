package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
)

// prober answers /healthz and /readyz.
type prober struct {
	a        *arbiter.Arbiter
	deadline time.Duration
}

// healthz is 200 when every watcher's loop answers within the deadline.
// The loops are asked one after the other, each with its own deadline, so
// that a stuck one is named and does not eat the others' time.
func (p *prober) healthz(w http.ResponseWriter, r *http.Request) {
	var bad []string
	ws := p.a.Watchers()
	for _, wt := range ws {
		ctx, cancel := context.WithTimeout(r.Context(), p.deadline)
		_, err := wt.Status(ctx)
		cancel()
		if err != nil {
			bad = append(bad, p.unanswered(wt, err))
		}
	}
	if len(bad) > 0 {
		answer(w, http.StatusServiceUnavailable, strings.Join(bad, "\n"))
		return
	}
	answer(w, http.StatusOK, fmt.Sprintf("ok: %d watchers answer", len(ws)))
}

// readyz is 200 once the arbiter has started and every autostart watcher
// is active with enough ready workers.
func (p *prober) readyz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-p.a.Started():
	default:
		answer(w, http.StatusServiceUnavailable, "not ready: the arbiter is starting its watchers")
		return
	}
	var bad []string
	n := 0
	for _, wt := range p.a.Watchers() {
		cfg := wt.Config()
		if !cfg.Autostart {
			continue
		}
		n++
		ctx, cancel := context.WithTimeout(r.Context(), p.deadline)
		st, err := wt.Status(ctx)
		cancel()
		if err != nil {
			bad = append(bad, p.unanswered(wt, err))
			continue
		}
		if why := notReady(st, cfg.ReadyzMin); why != "" {
			bad = append(bad, fmt.Sprintf("watcher %s: %s", wt.Name(), why))
		}
	}
	if len(bad) > 0 {
		answer(w, http.StatusServiceUnavailable, "not ready:\n"+strings.Join(bad, "\n"))
		return
	}
	answer(w, http.StatusOK, fmt.Sprintf("ready: %d autostart watchers", n))
}

// unanswered says that wt's loop did not answer a status request.
func (p *prober) unanswered(wt *arbiter.Watcher, err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Sprintf("watcher %s: its loop did not answer within %v", wt.Name(), p.deadline)
	}
	return fmt.Sprintf("watcher %s: its loop does not answer: %v", wt.Name(), err)
}

// notReady says why a watcher with status st is not ready, "" if it is.
// min is its readyz_min: -1 for its whole target.
func notReady(st arbiter.Status, min int) string {
	need := st.Target
	if min >= 0 && min < need {
		need = min
	}
	if need == 0 {
		return ""
	}
	ready := 0
	for _, p := range st.Procs {
		if p.Ready && !p.Stopping {
			ready++
		}
	}
	why := ""
	switch {
	case st.State != arbiter.Active:
		why = st.State.String()
	case ready < need:
		why = fmt.Sprintf("%d of %d workers ready", ready, need)
	default:
		return ""
	}
	if st.State != arbiter.Active && ready < need {
		why += fmt.Sprintf(", %d of %d workers ready", ready, need)
	}
	if st.Detail != "" {
		why += " (" + st.Detail + ")"
	}
	return why
}

func answer(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}
