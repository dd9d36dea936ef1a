// Package recipes_test runs each recipe of examples/recipes as a user
// would: the real arbiter and circusctl binaries, the real program from
// Debian (gunicorn, uWSGI, node) or the Go worker, a real socket. Each
// recipe serves a few concurrent clients through graceful reloads
// (`circusctl reload NAME --waiting`) and must not fail one request; the
// worst latency seen is logged, and docs/recipes.md quotes it.
package recipes_test

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

const (
	// clients is the number of concurrent clients of the load.
	clients = 4
	// reloads is how many graceful reloads each recipe goes through.
	reloads = 3
	// between is how many requests must be answered before the first
	// reload, between reloads and after the last.
	between = 50
)

// gunicorn --bind fd://$(circus.sockets.web): the Circus recipe that
// crash-looped with EBADF while the arbiter also set LISTEN_FDS (issue 17).
func TestGunicornFD(t *testing.T) {
	t.Parallel()
	needProgram(t, "gunicorn", "gunicorn")
	reloadUnderLoad(t, "gunicorn-fd.ini", "web", 1)
}

// reloadUnderLoad runs recipe, whose watcher runs numprocesses
// workers, under load through graceful reloads: each must replace every
// worker, and no request may fail.
func reloadUnderLoad(t *testing.T, recipe, watcher string, numprocesses int) {
	t.Helper()
	a := startRecipe(t, recipe)
	testproc.WaitFor(t, fmt.Sprintf("%d workers", numprocesses), startDeadline, func() bool {
		return len(a.workers(t, watcher)) == numprocesses
	})
	l := startLoad(t, a.url, clients)
	served := func(what string) {
		t.Helper()
		n := l.served()
		testproc.WaitFor(t, fmt.Sprintf("%d requests served %s", between, what), startDeadline, func() bool {
			return l.served() >= n+between
		})
	}
	served("before the first reload")
	for i := range reloads {
		before := a.workers(t, watcher)
		a.circusctl(t, "reload", watcher, "--waiting")
		after := a.workers(t, watcher)
		if len(after) != numprocesses {
			t.Errorf("reload %d: %d workers %v after it, want %d", i+1, len(after), after, numprocesses)
		}
		for _, pid := range after {
			if slices.Contains(before, pid) {
				t.Errorf("reload %d: worker %d was not replaced (before %v, after %v)", i+1, pid, before, after)
			}
		}
		served(fmt.Sprintf("after reload %d", i+1))
	}
	ok, failed, maxLat := l.stop()
	t.Logf("%s: %d requests from %d clients through %d reloads: %d failed, max latency %v",
		recipe, ok, clients, reloads, len(failed), maxLat)
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed through the reloads, want 0:%s", len(failed), ok+len(failed), errorsText(failed))
	}
	a.stop(t)
}
