package arbiter_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// writeScript writes a shell script for /bin/sh to read (see hookScript).
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// A health.cmd check passes while the command exits 0, with the worker's
// pid and wid in its environment and $(circus.wid) substituted; a worker
// whose check starts failing is replaced, the command's last words in the
// reason.
func TestHealthCmdReplacesFailingWorker(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeScript(t, dir, "check.sh", `echo "$CIRCUS_WATCHER $CIRCUS_PID $CIRCUS_WID $1" >> `+dir+`/checks
if [ -e `+dir+`/fail.$CIRCUS_PID ]; then echo "pid $CIRCUS_PID is poorly"; exit 1; fi
`)
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
health.cmd = /bin/sh `+script+` wid-$(circus.wid)
health.interval = 0.1
health.timeout = 2
health.failures = 2
graceful_timeout = 1
`)
	pid := r.pids(t, "web")[0]
	line := "web " + strconv.Itoa(pid) + " 1 wid-1"
	waitFor(t, "3 checks", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "checks"))
		return strings.Count(string(b), line+"\n") >= 3
	})
	if ev := r.events.Of(pubsub.Health); len(ev) != 0 {
		t.Fatalf("health events while the check passes: %+v", ev)
	}

	if err := os.WriteFile(filepath.Join(dir, "fail."+strconv.Itoa(pid)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a replacement", 20*time.Second, func() bool {
		p := r.pids(t, "web")
		return len(p) == 1 && p[0] != pid
	})
	ev := r.events.Of(pubsub.Health)
	if len(ev) != 1 || ev[0].Pid != pid ||
		!strings.Contains(ev[0].Reason, "2 failed checks in a row, the last: exit status 1: pid "+strconv.Itoa(pid)+" is poorly") {
		t.Fatalf("health events = %+v, want one for pid %d quoting the command", ev, pid)
	}
	waitFor(t, "the old worker gone", 10*time.Second, func() bool { return gone(pid) })
}

// A check command that hangs is killed at health.timeout with everything
// it started, and counts as a failure; nothing is left behind.
func TestHealthCmdHangs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeScript(t, dir, "hang.sh", `echo $$ >> `+dir+`/pids
sleep 100 &
echo $! >> `+dir+`/pids
wait
`)
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
copy_env = true
health.cmd = /bin/sh `+script+`
health.interval = 0.1
health.timeout = 0.3
health.failures = 2
graceful_timeout = 1
`)
	pid := r.pids(t, "web")[0]
	waitFor(t, "a health event", 20*time.Second, func() bool { return len(r.events.Of(pubsub.Health)) > 0 })
	ev := r.events.Of(pubsub.Health)[0]
	if ev.Pid != pid || !strings.Contains(ev.Reason, "the last: timed out after 300ms") {
		t.Fatalf("health event %+v, want pid %d timed out", ev, pid)
	}
	// Meanwhile, the arbiter answers, and the replacement comes (once
	// its spawn, on a goroutine of its own, has ended).
	waitFor(t, "the replacement", 10*time.Second, func() bool { return len(r.pids(t, "web")) == 1 })
	// Read while the arbiter runs: it is the subreaper that reaps the
	// orphaned sleeps.
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	pids := strings.Fields(string(b))
	if len(pids) < 4 {
		t.Fatalf("pids = %q, want at least two checks' worth", pids)
	}
	for _, f := range pids {
		p, _ := strconv.Atoi(f)
		waitFor(t, "check process "+f+" gone", 10*time.Second, func() bool { return gone(p) })
	}
}
