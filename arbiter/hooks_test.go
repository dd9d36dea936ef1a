package arbiter_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// hookScript writes a shell script into dir and returns the command that
// runs it. The script is read by /bin/sh rather than executed: a file just
// written may be held open for writing by a child between fork and exec
// elsewhere in the test binary, and exec would fail with ETXTBSY.
//
// The script appends "HOOK pid=.. wid=.. sig=.. code=.. status=.." to
// dir/log, and fails, printing "no HOOK today", while dir/fail.HOOK exists.
func hookScript(t *testing.T, dir string) string {
	t.Helper()
	script := `echo "$CIRCUS_HOOK watcher=$CIRCUS_WATCHER pid=$CIRCUS_PID wid=$CIRCUS_WID sig=$CIRCUS_SIGNUM code=$CIRCUS_EXIT_CODE status=$CIRCUS_PROCESS_STATUS" >> ` + dir + `/log
if [ -e ` + dir + `/fail.$CIRCUS_HOOK ]; then echo "no $CIRCUS_HOOK today" >&2; exit 3; fi
`
	path := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	return "/bin/sh " + path
}

// hookLog returns the lines the hook script has written so far.
func hookLog(dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "log"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// hookNames returns the names of the hooks of the events of kind.
func hookNames(r *running, kind pubsub.Kind) []string {
	var names []string
	for _, ev := range r.events.Of(kind) {
		names = append(names, ev.Hook)
	}
	return names
}

// allHooks configures every hook to run cmd.
func allHooks(cmd string) string {
	var b strings.Builder
	for _, h := range []string{"before_start", "after_start", "before_spawn", "after_spawn", "before_stop",
		"after_stop", "before_signal", "after_signal", "before_reap", "after_reap"} {
		b.WriteString("hooks." + h + " = " + cmd + "\n")
	}
	return b.String()
}

// failingHook runs an arbiter with watcher web (WORKER sleep, and the
// extra keys) whose hooks.HOOK is hookScript, made to fail. It returns the
// script's directory, the arbiter and the watcher.
func failingHook(t *testing.T, hook, keys string) (string, *running, *arbiter.Watcher) {
	t.Helper()
	dir := t.TempDir()
	failHook(t, dir, hook)
	r := start(t, "[watcher:web]\ncmd = WORKER sleep\n"+keys+"\nhooks."+hook+" = "+hookScript(t, dir)+"\n")
	return dir, r, r.Watcher("web")
}

func failHook(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "fail."+name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, w *arbiter.Watcher) arbiter.State {
	t.Helper()
	st, _, err := w.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Every hook runs at its point of a watcher's life, in Circus's order,
// with its arguments in the environment, and publishes hook_success.
func TestHooksRunInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
graceful_timeout = 5
`+allHooks(hookScript(t, dir)))
	w := r.Watcher("web")
	pids := r.pids(t, "web")
	if len(pids) != 1 {
		t.Fatalf("pids = %v, want 1", pids)
	}
	pid := strconv.Itoa(pids[0])
	// SIGCONT: a signal the worker survives.
	if err := w.Signal(context.Background(), 0, syscall.SIGCONT, false, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"before_start watcher=web pid= wid= sig= code= status=",
		"before_spawn watcher=web pid= wid=1 sig= code= status=",
		"after_spawn watcher=web pid=" + pid + " wid=1 sig= code= status=",
		"after_start watcher=web pid= wid= sig= code= status=",
		"before_signal watcher=web pid=" + pid + " wid=1 sig=18 code= status=",
		"after_signal watcher=web pid=" + pid + " wid=1 sig=18 code= status=",
		"before_stop watcher=web pid= wid= sig= code= status=",
		"before_signal watcher=web pid=" + pid + " wid=1 sig=15 code= status=",
		"after_signal watcher=web pid=" + pid + " wid=1 sig=15 code= status=",
		"before_reap watcher=web pid=" + pid + " wid=1 sig= code= status=",
		"after_reap watcher=web pid=" + pid + " wid=1 sig= code=-15 status=15",
		"after_stop watcher=web pid= wid= sig= code= status=",
	}
	waitFor(t, "every hook", 10*time.Second, func() bool { return len(hookLog(dir)) >= len(want) })
	if diff := cmp.Diff(want, hookLog(dir)); diff != "" {
		t.Errorf("hooks run (-want +got):\n%s", diff)
	}
	waitFor(t, "hook_success events", 10*time.Second, func() bool { return len(r.events.Of(pubsub.HookSuccess)) >= len(want) })
	var wantNames []string
	for _, l := range want {
		name, _, _ := strings.Cut(l, " ")
		wantNames = append(wantNames, name)
	}
	if diff := cmp.Diff(wantNames, hookNames(r, pubsub.HookSuccess)); diff != "" {
		t.Errorf("hook_success events (-want +got):\n%s", diff)
	}
	for _, ev := range r.events.Of(pubsub.HookSuccess) {
		if ev.Watcher != "web" || ev.Time.IsZero() {
			t.Errorf("hook_success event %+v, want watcher web and a time", ev)
		}
	}
	if ev := r.events.Of(pubsub.HookFailure); len(ev) != 0 {
		t.Errorf("hook_failure events: %+v", ev)
	}
}

// A failing before_start vetoes the start: the watcher stays stopped, the
// start fails naming the hook and what it said, and hook_failure is
// published. Once the hook passes, the start goes ahead.
func TestHookBeforeStartVetoes(t *testing.T) {
	t.Parallel()
	dir, r, w := failingHook(t, "before_start", "autostart = false")
	err := w.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "start refused: hooks.before_start: exit status 3: no before_start today") {
		t.Fatalf("Start() = %v, want the hook's refusal", err)
	}
	if st := state(t, w); st != arbiter.Stopped {
		t.Errorf("state = %v, want stopped", st)
	}
	if ev := r.events.Of(pubsub.Spawn); len(ev) != 0 {
		t.Errorf("spawned despite the veto: %+v", ev)
	}
	ev := r.events.Of(pubsub.HookFailure)
	if len(ev) != 1 || ev[0].Hook != "before_start" || ev[0].Watcher != "web" ||
		ev[0].Reason != "hooks.before_start: exit status 3: no before_start today" {
		t.Fatalf("hook_failure events = %+v", ev)
	}

	if err := os.Remove(filepath.Join(dir, "fail.before_start")); err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start() with the hook passing = %v", err)
	}
	if st := state(t, w); st != arbiter.Active {
		t.Errorf("state = %v, want active", st)
	}
	if got := hookNames(r, pubsub.HookSuccess); !slices.Equal(got, []string{"before_start"}) {
		t.Errorf("hook_success events for %v, want before_start", got)
	}
}

// The ", true" flag makes a failing hook veto nothing; it is still
// reported.
func TestHookIgnoreFlag(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	failHook(t, dir, "before_start")
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
autostart = false
hooks.before_start = `+hookScript(t, dir)+`, true
`)
	w := r.Watcher("web")
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start() = %v, want the failure ignored", err)
	}
	if st := state(t, w); st != arbiter.Active {
		t.Errorf("state = %v, want active", st)
	}
	if got := hookNames(r, pubsub.HookFailure); !slices.Equal(got, []string{"before_start"}) {
		t.Errorf("hook_failure events for %v, want before_start", got)
	}
}

// A failing before_spawn aborts the spawn and stops the watcher.
func TestHookBeforeSpawnVetoes(t *testing.T) {
	t.Parallel()
	_, r, w := failingHook(t, "before_spawn", "autostart = false")
	err := w.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "hooks.before_spawn: exit status 3: no before_spawn today") {
		t.Fatalf("Start() = %v, want the hook's failure", err)
	}
	if st := state(t, w); st != arbiter.Stopped {
		t.Errorf("state = %v, want stopped", st)
	}
	if ev := r.events.Of(pubsub.Spawn); len(ev) != 0 {
		t.Errorf("spawned despite the veto: %+v", ev)
	}
	if got := hookNames(r, pubsub.HookFailure); !slices.Equal(got, []string{"before_spawn"}) {
		t.Errorf("hook_failure events for %v, want before_spawn", got)
	}
}

// A failing after_spawn kills the new worker and stops the watcher.
func TestHookAfterSpawnKills(t *testing.T) {
	t.Parallel()
	dir, r, w := failingHook(t, "after_spawn", "autostart = false\ngraceful_timeout = 5")
	err := w.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "hooks.after_spawn: exit status 3: no after_spawn today") {
		t.Fatalf("Start() = %v, want the hook's failure", err)
	}
	spawns := r.events.Of(pubsub.Spawn)
	if len(spawns) != 1 {
		t.Fatalf("spawn events = %+v, want 1", spawns)
	}
	pid := spawns[0].Pid
	if got := hookLog(dir); len(got) != 1 || !strings.Contains(got[0], "after_spawn watcher=web pid="+strconv.Itoa(pid)+" wid=1") {
		t.Errorf("hook log = %q, want after_spawn of pid %d", got, pid)
	}
	waitFor(t, "the worker reaped", 10*time.Second, func() bool {
		for _, ev := range r.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				return true
			}
		}
		return false
	})
	waitFor(t, "the watcher stopped", 10*time.Second, func() bool { return state(t, w) == arbiter.Stopped })
	waitFor(t, "the worker gone", 10*time.Second, func() bool { return gone(pid) })
}

// A failing before_signal keeps the signal from the worker, except
// SIGKILL: a stop then ends in SIGKILL after graceful_timeout.
func TestHookBeforeSignalVetoes(t *testing.T) {
	t.Parallel()
	dir, r, w := failingHook(t, "before_signal", "graceful_timeout = 0.3")
	pid := r.pids(t, "web")[0]
	// Not sent: the worker would die of it.
	if err := w.Signal(context.Background(), pid, syscall.SIGTERM, false, false); err != nil {
		t.Fatal(err)
	}
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	reaps := r.events.Of(pubsub.Reap)
	if len(reaps) != 1 || reaps[0].Pid != pid || reaps[0].ExitCode != -int(syscall.SIGKILL) {
		t.Fatalf("reap events = %+v, want pid %d killed by SIGKILL", reaps, pid)
	}
	p := strconv.Itoa(pid)
	want := []string{
		"before_signal watcher=web pid=" + p + " wid=1 sig=15 code= status=", // the signal command
		"before_signal watcher=web pid=" + p + " wid=1 sig=15 code= status=", // stop_signal
		"before_signal watcher=web pid=" + p + " wid=1 sig=9 code= status=",  // graceful_timeout passed
	}
	// SIGKILL is never held back by a hook (issue 14, item 6): its
	// before_signal may still run when the stop answers.
	waitFor(t, "three before_signal runs", 10*time.Second, func() bool {
		return len(hookLog(dir)) >= 3 && len(hookNames(r, pubsub.HookFailure)) >= 3
	})
	if diff := cmp.Diff(want, hookLog(dir)); diff != "" {
		t.Errorf("hooks run (-want +got):\n%s", diff)
	}
	if got := hookNames(r, pubsub.HookFailure); len(got) != 3 {
		t.Errorf("hook_failure events for %v, want 3", got)
	}
}

// A hook that outlives hook_timeout is killed with everything it started,
// and counts as failed.
func TestHookTimeout(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := filepath.Join(dir, "hang.sh")
	if err := os.WriteFile(script, []byte(`echo $$ >> `+dir+`/pids
sleep 100 &
echo $! >> `+dir+`/pids
wait
`), 0o644); err != nil {
		t.Fatal(err)
	}
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
autostart = false
copy_env = true
hook_timeout = 0.3
hooks.before_start = /bin/sh `+script+`
`)
	w := r.Watcher("web")
	begin := time.Now()
	err := w.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "hooks.before_start: timed out after 300ms") {
		t.Fatalf("Start() = %v, want a timeout", err)
	}
	if took := time.Since(begin); took > 10*time.Second {
		t.Errorf("Start took %v with a hook_timeout of 300ms", took)
	}
	if st := state(t, w); st != arbiter.Stopped {
		t.Errorf("state = %v, want stopped", st)
	}
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		t.Fatalf("pids = %q, want the hook's and its child's", b)
	}
	for _, f := range fields {
		pid, _ := strconv.Atoi(f)
		waitFor(t, "process "+f+" gone", 10*time.Second, func() bool { return gone(pid) })
	}
}

// Circus's Python hooks load with a warning and never run.
func TestHookPythonCallableIgnored(t *testing.T) {
	t.Parallel()
	cfg := loadINI(t, `
[watcher:web]
cmd = WORKER sleep
hooks.before_start = tests.test_config.hook, false
`)
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0].Error(), `hooks.before_start: "tests.test_config.hook" is a Python hook, which Ringmaster cannot run; ignored`) {
		t.Fatalf("warnings = %v, want one about the Python hook", cfg.Warnings)
	}
	r := start(t, `
[watcher:web]
cmd = WORKER sleep
hooks.before_start = tests.test_config.hook, false
`)
	if st := state(t, r.Watcher("web")); st != arbiter.Active {
		t.Errorf("state = %v, want active", st)
	}
	if ev := append(r.events.Of(pubsub.HookSuccess), r.events.Of(pubsub.HookFailure)...); len(ev) != 0 {
		t.Errorf("hook events for a hook that cannot run: %+v", ev)
	}
}

// A watcher whose loop waits for hooks while more workers exit than its
// exit queue holds keeps the reaper free: every hook of the stop runs and
// passes (a stalled reaper could not reap the hooks themselves, which then
// timed out and vetoed their signals).
func TestHooksWithManyExits(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:many]
cmd = WORKER sleep
numprocesses = 300
hooks.before_signal = /bin/true
hook_timeout = 2
graceful_timeout = 30
`)
	waitFor(t, "300 workers", 60*time.Second, func() bool { return len(r.pids(t, "many")) == 300 })
	if err := r.Watcher("many").Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if f := r.events.Of(pubsub.HookFailure); len(f) != 0 {
		t.Fatalf("%d hooks failed, the first: %+v", len(f), f[0])
	}
	if n := len(r.events.Of(pubsub.HookSuccess)); n != 300 {
		t.Errorf("%d before_signal hooks passed, want 300", n)
	}
	for _, ev := range r.events.Of(pubsub.Kill) {
		if ev.Signal != int(syscall.SIGTERM) {
			t.Fatalf("kill event %+v: want only SIGTERM, the workers die of it", ev)
		}
	}
}

// A hook never holds the watcher's loop: while a before_signal hook runs
// for the stop signal, graceful_timeout still escalates to SIGKILL on
// time, and the stop is over before the hook is (issue 14, item 6: the
// escalation was late by the hook's duration).
func TestSlowHookDoesNotDelayEscalation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := start(t, `[watcher:web]
cmd = WORKER ignoreterm `+dir+`/pids
graceful_timeout = 0.3
hook_timeout = 30
hooks.before_signal = /bin/sh -c '[ "$CIRCUS_SIGNUM" = 9 ] || sleep 8'
`)
	pid, _ := waitPids(t, filepath.Join(dir, "pids"))
	w := r.Watcher("web")
	if err := w.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	reaps := r.events.Of(pubsub.Reap)
	if len(reaps) != 1 || reaps[0].Pid != pid || reaps[0].ExitCode != -int(syscall.SIGKILL) {
		t.Fatalf("reap events = %+v, want pid %d killed by SIGKILL", reaps, pid)
	}
	// The stop_signal's before_signal is still sleeping: the SIGKILL did
	// not wait for it.
	if got := hookNames(r, pubsub.HookSuccess); slices.Contains(got, "before_signal") {
		t.Errorf("hook_success events when the stop answered: %v; the stop waited for before_signal", got)
	}
	// The loop answers meanwhile.
	if st, err := w.Status(context.Background()); err != nil || st.State != arbiter.Stopped {
		t.Errorf("Status during the hook = %v, %v; want stopped", st.State, err)
	}
}
