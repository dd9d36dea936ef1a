package examples_test

// The recipes of examples/recipes, run as a user would: the real program
// from Debian (gunicorn, uWSGI, node) or the Go worker behind the arbiter.
// Each recipe serves a few concurrent clients through graceful reloads
// (`circusctl reload NAME --waiting`) and must not fail one request; the
// worst latency seen is logged, and docs/recipes.md quotes it.

import (
	"fmt"
	"slices"
	"testing"
	"time"

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
func TestRecipeGunicornFD(t *testing.T) {
	t.Parallel()
	testproc.NeedTool(t, "gunicorn", "gunicorn")
	reloadUnderLoad(t, "gunicorn-fd.ini", "web", 1)
}

// reloadUnderLoad runs recipe, whose watcher runs numprocesses
// workers, under load through graceful reloads: each must replace every
// worker, and no request may fail.
func reloadUnderLoad(t *testing.T, recipe, watcher string, numprocesses int) {
	t.Helper()
	a := startArbiter(t, "recipes/"+recipe)
	testproc.WaitFor(t, fmt.Sprintf("%d workers", numprocesses), startDeadline, func() bool {
		return len(a.list(t, watcher)) == numprocesses
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
		before := a.list(t, watcher)
		a.circusctl(t, "reload", watcher, "--waiting")
		after := a.list(t, watcher)
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
	lats, failed := l.stop()
	// Logged for docs/recipes.md; never asserted (speed lives in benchmarks).
	t.Logf("%s: %d requests from %d clients through %d reloads: %d failed; latency median %v, p99 %v, max %v",
		recipe, len(lats)+len(failed), clients, reloads, len(failed),
		lats[len(lats)/2].Round(time.Microsecond), lats[len(lats)*99/100].Round(time.Microsecond), lats[len(lats)-1].Round(time.Microsecond))
	if len(failed) > 0 {
		t.Errorf("%d of %d requests failed through the reloads, want 0:%s", len(failed), len(lats)+len(failed), errorsText(failed))
	}
	a.stop(t)
}

// gunicorn without --bind finds its socket through LISTEN_FDS.
func TestRecipeGunicornSocketActivation(t *testing.T) {
	t.Parallel()
	testproc.NeedTool(t, "gunicorn", "gunicorn")
	reloadUnderLoad(t, "gunicorn-sd.ini", "web", 1)
}

// uWSGI on --http-socket fd://$(circus.sockets.web).
func TestRecipeUWSGI(t *testing.T) {
	t.Parallel()
	testproc.NeedTool(t, "uwsgi", "uwsgi and uwsgi-plugin-python3")
	reloadUnderLoad(t, "uwsgi.ini", "web", 1)
}

// The Go net/http worker on --fd $(circus.sockets.web).
func TestRecipeGoWorker(t *testing.T) {
	t.Parallel()
	reloadUnderLoad(t, "go.ini", "web", 2)
}

// Node's http module on server.listen({fd}).
func TestRecipeNode(t *testing.T) {
	t.Parallel()
	testproc.NeedTool(t, "node", "nodejs")
	reloadUnderLoad(t, "node.ini", "web", 2)
}
