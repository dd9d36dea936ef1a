package metrics

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
)

const probesINI = `
[watcher:web]
cmd = WORKER sleep
numprocesses = 2

[watcher:batch]
cmd = WORKER sleep
readyz_min = 0

[watcher:manual]
cmd = WORKER sleep
autostart = false
`

// /readyz waits for every autostart watcher but those with readyz_min = 0,
// and says which is not ready and why; /healthz is 503 once the watchers'
// loops no longer answer.
func TestProbes(t *testing.T) {
	a, stop := runArbiter(t, probesINI)
	_, srv := serve(t, Options{Arbiter: a})
	expect := func(path string, code int, body string) {
		t.Helper()
		gotCode, got := get(t, srv.URL+path)
		if gotCode != code || !strings.Contains(got, body) {
			t.Errorf("GET %s = %d %q, want %d and %q", path, gotCode, got, code, body)
		}
	}
	expect("/readyz", http.StatusOK, "ready: 2 autostart watchers")
	expect("/healthz", http.StatusOK, "ok: 3 watchers answer")

	if err := a.Watcher("web").Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect("/readyz", http.StatusServiceUnavailable, "not ready:\nwatcher web: stopped, 0 of 2 workers ready")
	expect("/healthz", http.StatusOK, "ok: 3 watchers answer")
	if err := a.Watcher("web").Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	// batch may stop: readyz_min = 0.
	if err := a.Watcher("batch").Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	expect("/readyz", http.StatusOK, "ready: 2 autostart watchers")

	stop()
	expect("/healthz", http.StatusServiceUnavailable, "watcher web: its loop does not answer: watcher web: watcher stopped")
	expect("/readyz", http.StatusServiceUnavailable, "watcher web: its loop does not answer")
}

// Before Run the watchers' loops do not run: the arbiter is not ready, and
// not healthy either, each loop named as not answering (as a stuck one
// would be); /metrics says so too and still answers.
func TestProbesBeforeRun(t *testing.T) {
	a, err := arbiter.New(arbtest.LoadINI(t, worker, probesINI), arbiter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, srv := serve(t, Options{Arbiter: a, Deadline: 50 * time.Millisecond})
	code, body := get(t, srv.URL+"/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "the arbiter is starting its watchers") {
		t.Errorf("GET /readyz before Run = %d %q, want 503, starting", code, body)
	}
	code, body = get(t, srv.URL+"/healthz")
	want := "watcher web: its loop did not answer within 50ms\nwatcher batch: its loop did not answer within 50ms\n" +
		"watcher manual: its loop did not answer within 50ms\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("GET /healthz before Run = %d %q, want 503 %q", code, body, want)
	}
	s := scrapeOf(t, srv)
	if up := s.must(t, "ringmaster_watcher_up", "watcher", "web"); up != 0 {
		t.Errorf("ringmaster_watcher_up{web} before Run = %v, want 0", up)
	}
	if _, ok := s.value("ringmaster_watcher_processes", "watcher", "web"); ok {
		t.Errorf("ringmaster_watcher_processes{web} present although its loop did not answer")
	}
	for _, s := range a.Sockets() {
		s.Close()
	}
}

func TestNotReady(t *testing.T) {
	t.Parallel()
	procs := func(ready, starting, stopping int) []arbiter.ProcessInfo {
		var ps []arbiter.ProcessInfo
		for range ready {
			ps = append(ps, arbiter.ProcessInfo{Ready: true})
		}
		for range starting {
			ps = append(ps, arbiter.ProcessInfo{})
		}
		for range stopping {
			ps = append(ps, arbiter.ProcessInfo{Ready: true, Stopping: true})
		}
		return ps
	}
	tests := []struct {
		name string
		st   arbiter.Status
		min  int
		want string
	}{
		{"all ready", arbiter.Status{State: arbiter.Active, Target: 3, Procs: procs(3, 0, 0)}, -1, ""},
		{"one starting", arbiter.Status{State: arbiter.Active, Target: 3, Procs: procs(2, 1, 0)}, -1, "2 of 3 workers ready"},
		{"stopping ones do not count", arbiter.Status{State: arbiter.Active, Target: 2, Procs: procs(1, 0, 1)}, -1, "1 of 2 workers ready"},
		{"readyz_min met", arbiter.Status{State: arbiter.Active, Target: 3, Procs: procs(1, 2, 0)}, 1, ""},
		{"readyz_min above the target", arbiter.Status{State: arbiter.Active, Target: 2, Procs: procs(2, 0, 0)}, 5, ""},
		{"scaled to zero", arbiter.Status{State: arbiter.Active, Target: 0}, -1, ""},
		{"flapping", arbiter.Status{State: arbiter.Stopped, Target: 2, Detail: "flapping, retry in 6s"}, -1,
			"stopped, 0 of 2 workers ready (flapping, retry in 6s)"},
		{"stopping with enough", arbiter.Status{State: arbiter.Stopping, Target: 1, Procs: procs(1, 0, 0)}, -1, "stopping"},
		{"stopped, not counted", arbiter.Status{State: arbiter.Stopped, Target: 2}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := notReady(tt.st, tt.min); got != tt.want {
				t.Errorf("notReady(%+v, %d) = %q, want %q", tt.st, tt.min, got, tt.want)
			}
		})
	}
}

// readyz_min changes with a reload, the workers kept: it is read at each
// probe.
func TestReadyzMinReload(t *testing.T) {
	a, _ := runArbiter(t, probesINI)
	_, srv := serve(t, Options{Arbiter: a})
	web := a.Watcher("web")
	before := pids(t, web)
	cfg := arbtest.LoadINI(t, worker, strings.Replace(probesINI, "numprocesses = 2\n", "numprocesses = 2\nreadyz_min = 0\n", 1))
	if err := a.Reload(t.Context(), cfg); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if got := a.Watcher("web").Config().ReadyzMin; got != 0 {
		t.Fatalf("readyz_min after the reload = %d, want 0", got)
	}
	if after := pids(t, a.Watcher("web")); !slices.Equal(before, after) {
		t.Errorf("workers %v replaced by %v for a change of readyz_min", before, after)
	}
	if err := a.Watcher("web").Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, srv.URL+"/readyz"); code != http.StatusOK {
		t.Errorf("GET /readyz with web stopped and readyz_min = 0 = %d %q, want 200", code, body)
	}
}
