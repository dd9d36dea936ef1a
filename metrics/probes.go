package metrics

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
)

// prober answers /healthz and /readyz.
type prober struct {
	a        *arbiter.Arbiter
	deadline time.Duration
}

// answer is one watcher's status as a probe asked for it.
type answer struct {
	w   *arbiter.Watcher
	st  arbiter.Status
	err error
}

// ask asks every watcher of ws for its status at once, with one deadline
// for all: a probe or a scrape answers within the deadline however many
// loops are stuck, and names each of them.
func ask(ctx context.Context, ws []*arbiter.Watcher, deadline time.Duration) []answer {
	ctx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	out := make([]answer, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			st, err := w.Status(ctx)
			out[i] = answer{w: w, st: st, err: err}
		})
	}
	wg.Wait()
	return out
}

// healthz is 200 when every watcher's loop answers within the deadline.
func (p *prober) healthz(w http.ResponseWriter, r *http.Request) {
	var bad []string
	as := ask(r.Context(), p.a.Watchers(), p.deadline)
	for _, a := range as {
		if a.err != nil {
			bad = append(bad, p.unanswered(a))
		}
	}
	if len(bad) > 0 {
		reply(w, http.StatusServiceUnavailable, strings.Join(bad, "\n"))
		return
	}
	reply(w, http.StatusOK, "ok: "+count(len(as), "watcher answers", "watchers answer"))
}

// readyz is 200 once the arbiter has started and every autostart watcher
// is active with enough ready workers.
func (p *prober) readyz(w http.ResponseWriter, r *http.Request) {
	select {
	case <-p.a.Started():
	default:
		reply(w, http.StatusServiceUnavailable, "not ready: the arbiter is starting its watchers")
		return
	}
	var auto []*arbiter.Watcher
	for _, wt := range p.a.Watchers() {
		if wt.Config().Autostart {
			auto = append(auto, wt)
		}
	}
	var bad []string
	for _, a := range ask(r.Context(), auto, p.deadline) {
		if a.err != nil {
			bad = append(bad, p.unanswered(a))
		} else if why := notReady(a.st, a.w.Config().ReadyzMin); why != "" {
			bad = append(bad, fmt.Sprintf("watcher %s: %s", a.w.Name(), why))
		}
	}
	if len(bad) > 0 {
		reply(w, http.StatusServiceUnavailable, "not ready:\n"+strings.Join(bad, "\n"))
		return
	}
	reply(w, http.StatusOK, "ready: "+count(len(auto), "autostart watcher", "autostart watchers"))
}

// unanswered says that a watcher's loop did not answer a status request.
func (p *prober) unanswered(a answer) string {
	if errors.Is(a.err, context.DeadlineExceeded) {
		return fmt.Sprintf("watcher %s: its loop did not answer within %v", a.w.Name(), p.deadline)
	}
	return fmt.Sprintf("watcher %s: its loop does not answer: %v", a.w.Name(), a.err)
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
		if ready < need {
			why += fmt.Sprintf(", %d of %d workers ready", ready, need)
		}
	case ready < need:
		why = fmt.Sprintf("%d of %d workers ready", ready, need)
	default:
		return ""
	}
	if st.Detail != "" {
		why += " (" + st.Detail + ")"
	}
	return why
}

func reply(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}

// count is n with the singular or plural words after it, for a probe's
// one-line body.
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}
