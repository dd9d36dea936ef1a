package main_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// statusWatcher is what circusctl --json status shows of one watcher.
type statusWatcher struct {
	State    string            `json:"state"`
	Detail   string            `json:"detail"`
	RetryIn  *float64          `json:"retry_in"`
	Running  int               `json:"running"`
	Ready    int               `json:"ready"`
	Uptime   *float64          `json:"uptime"`
	Restarts map[string]uint64 `json:"restarts"`
	LastExit *struct {
		Pid        int    `json:"pid"`
		Code       int    `json:"code"`
		SignalName string `json:"signal_name"`
		Expected   bool   `json:"expected"`
		Reason     string `json:"reason"`
	} `json:"last_exit"`
}

// circusctl status tells an operator what to act on (issue 16): a worker
// killed by SIGKILL, one that exits 3 and is held back by a crash loop's
// backoff, and a watcher stopped by the flapping limit each show what
// happened, when, and when the watcher tries again; for scripts the same
// in --json, and Circus's lines when piped without --table.
func TestStatusAfterDeaths(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, `[watcher:web]
cmd = WORKER sleep
numprocesses = 2

[watcher:exit3]
cmd = WORKER exit 3
flapping.attempts = 0
restart_delay = 60
restart_max_delay = 60

[watcher:crashy]
cmd = WORKER exit 1
flapping.attempts = 2
flapping.window = 30
flapping.retry_in = 60
restart_delay = 0
`)
	victim := a.waitPids(t, "web", 2)[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws map[string]statusWatcher
	waitFor(t, "the deaths in status --json", 30*time.Second, func() bool {
		var r struct{ Watchers map[string]statusWatcher }
		if err := json.Unmarshal([]byte(ctlOK(t, a.endpoint, "--json", "status")), &r); err != nil {
			t.Fatal(err)
		}
		ws = r.Watchers
		return ws["web"].LastExit != nil && ws["web"].Running == 2 &&
			strings.HasPrefix(ws["exit3"].Detail, "crash loop: restart in ") && ws["crashy"].State == "stopped" && ws["crashy"].RetryIn != nil
	})
	web, exit3, crashy := ws["web"], ws["exit3"], ws["crashy"]
	if e := web.LastExit; e.Pid != victim || e.SignalName != "SIGKILL" || e.Code != -1 || e.Expected || e.Reason != "signal" ||
		web.Restarts["signal"] != 1 || web.Uptime == nil || web.Ready != 2 {
		t.Errorf("web = %+v, last exit %+v; want pid %d's SIGKILL, not expected, counted once, 2 ready, an uptime", web, *e, victim)
	}
	if e := exit3.LastExit; e == nil || e.Code != 3 || e.Reason != "exit" || exit3.Restarts["exit"] != 2 || exit3.State != "active" {
		t.Errorf("exit3 = %+v; want active, 2 deaths by exit 3, in its crash loop's backoff", exit3)
	}
	if crashy.Uptime != nil || *crashy.RetryIn <= 0 || *crashy.RetryIn > 60 || crashy.Restarts["exit"] != 2 ||
		!strings.HasPrefix(crashy.Detail, "flapping, retry 1 of 5 in ") {
		t.Errorf("crashy = %+v; want flapping, a retry within 60s, no uptime, 2 deaths", crashy)
	}

	table := ctlOK(t, a.endpoint, "status", "--table")
	t.Logf("circusctl status --table:\n%s", table)
	for _, re := range []string{
		`(?m)^NAME +STATE +READY/RUNNING/TARGET +UPTIME +RESTARTS +LAST EXIT$`,
		`(?m)^crashy +stopped \(flapping, retry 1 of 5 in [0-9.hms]+\) +0/0/1 +- +2 +exit 1 \(not expected\) [0-9]+s ago, pid [0-9]+$`,
		`(?m)^exit3 +active \(crash loop: restart in [0-9.hms]+\) +0/0/1 +[0-9]+s +2 +exit 3 \(not expected\) [0-9]+s ago, pid [0-9]+$`,
		`(?m)^web +active +2/2/2 +[0-9]+s +1 +SIGKILL \(not expected\) [0-9]+s ago, pid ` + strconv.Itoa(victim) + `$`,
	} {
		if !regexp.MustCompile(re).MatchString(table) {
			t.Errorf("circusctl status --table does not match %s", re)
		}
	}
	one := ctlOK(t, a.endpoint, "status", "web", "--table")
	t.Logf("circusctl status web --table:\n%s", one)
	pids := a.pids(t, "web")
	for _, pid := range pids {
		if !regexp.MustCompile(`(?m)^` + strconv.Itoa(pid) + ` +[12] +[0-9]+s +yes +[01]$`).MatchString(one) {
			t.Errorf("circusctl status web --table lists no ready row for worker %d", pid)
		}
	}
	// Piped without --table: Circus's lines, for scripts written for it.
	if out := ctlOK(t, a.endpoint, "status", "web"); out != "active\n" {
		t.Errorf("circusctl status web = %q, want Circus's \"active\"", out)
	}
	if out := ctlOK(t, a.endpoint, "status"); !strings.Contains(out, "web: active\n") || !strings.Contains(out, "crashy: stopped (flapping, retry 1 of 5 in ") {
		t.Errorf("circusctl status = %q, want Circus's lines with the detail", out)
	}
}
