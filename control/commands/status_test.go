package commands_test

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// watcherJSON is a watcher's object in status with details.
type watcherJSON struct {
	State     string            `json:"state"`
	Detail    string            `json:"detail"`
	RetryAt   *float64          `json:"retry_at"`
	RetryIn   *float64          `json:"retry_in"`
	Target    int               `json:"target"`
	Running   int               `json:"running"`
	Ready     int               `json:"ready"`
	Since     *float64          `json:"since"`
	Uptime    *float64          `json:"uptime"`
	Restarts  map[string]uint64 `json:"restarts"`
	LastExit  *exitJSON         `json:"last_exit"`
	Processes []struct {
		Pid      int      `json:"pid"`
		Wid      int      `json:"wid"`
		Started  *float64 `json:"started"`
		Uptime   *float64 `json:"uptime"`
		Ready    bool     `json:"ready"`
		Stopping bool     `json:"stopping"`
		Restarts uint64   `json:"restarts"`
		Status   string   `json:"status"`
	} `json:"processes"`
}

type exitJSON struct {
	Pid        int     `json:"pid"`
	Wid        int     `json:"wid"`
	Code       int     `json:"code"`
	Signal     int     `json:"signal"`
	SignalName string  `json:"signal_name"`
	Expected   bool    `json:"expected"`
	Reason     string  `json:"reason"`
	Time       float64 `json:"time"`
}

// status with details adds, under "watchers" (all) or "watcher" (one),
// what an operator acts on: workers ready, running and wanted, uptime,
// restarts by reason and the last exit; Circus's keys stay as they were
// (issue 16).
func TestStatusDetails(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:web]
cmd = WORKER sleep
numprocesses = 2

[watcher:crashy]
cmd = WORKER exit 3
flapping.attempts = 2
flapping.window = 30
flapping.retry_in = 60
`)
	victim := e.pids("web")[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var web, crashy watcherJSON
	testproc.WaitFor(t, "the SIGKILL counted and crashy flapping", 20*time.Second, func() bool {
		o := replyObject(t, e.call("status", `{"details": true}`))
		if !slices.Equal(o.keys, []string{"status", "time", "statuses", "details", "watchers", "id"}) {
			t.Fatalf("status keys = %v", o.keys)
		}
		ws := o.sub(t, "watchers")
		ws.get(t, "web", &web)
		ws.get(t, "crashy", &crashy)
		return web.LastExit != nil && web.Running == 2 && crashy.RetryAt != nil
	})
	if web.State != "active" || web.Target != 2 || web.Ready != 2 || web.Since == nil || web.Uptime == nil || web.Processes != nil {
		t.Errorf("web = %+v, want active, 2 of 2 ready, an uptime, no processes", web)
	}
	want := &exitJSON{Pid: victim, Wid: web.LastExit.Wid, Code: -1, Signal: 9, SignalName: "SIGKILL", Reason: "signal", Time: web.LastExit.Time}
	if diff := cmp.Diff(want, web.LastExit); diff != "" || web.LastExit.Time < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("web last_exit (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]uint64{"signal": 1}, web.Restarts); diff != "" {
		t.Errorf("web restarts (-want +got):\n%s", diff)
	}
	if crashy.State != "stopped" || crashy.Since != nil || crashy.Uptime != nil || crashy.RetryIn == nil ||
		*crashy.RetryIn <= 0 || *crashy.RetryIn > 60 || crashy.Restarts["exit"] != 2 || crashy.LastExit.Code != 3 {
		t.Errorf("crashy = %+v, want stopped, flapping with a retry within 60s, 2 deaths by exit 3", crashy)
	}

	// One watcher: its workers too.
	o := replyObject(t, e.call("status", `{"name": "web", "details": true}`))
	if !slices.Equal(o.keys, []string{"status", "time", "detail", "watcher", "id"}) {
		t.Fatalf("status web keys = %v", o.keys)
	}
	o.get(t, "watcher", &web)
	if len(web.Processes) != 2 {
		t.Fatalf("web processes = %+v, want 2", web.Processes)
	}
	for _, p := range web.Processes {
		restarts := uint64(0)
		if p.Wid == web.LastExit.Wid {
			restarts = 1
		}
		if !p.Ready || p.Stopping || p.Started == nil || p.Uptime == nil || p.Restarts != restarts || p.Pid == victim {
			t.Errorf("web process %+v: want ready, running, with its uptime and %d restarts", p, restarts)
		}
	}
}
