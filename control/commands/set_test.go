package commands_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// setINI has a running watcher, a stopped one (where options can be set
// without workers being replaced) and a singleton.
const setINI = `
[watcher:sleeper]
cmd = WORKER sleep
graceful_timeout = 5

[watcher:idle]
cmd = WORKER sleep
autostart = false

[watcher:single]
cmd = WORKER sleep
singleton = true
`

// set checks each value against §2.5's type rules before anything is
// changed, with Circus's words (circus/commands/util.py validate_option).
func TestSetRejects(t *testing.T) {
	t.Parallel()
	e := start(t, setINI)
	for _, tc := range []struct {
		name, options, reason string
	}{
		{"numprocesses string", `{"numprocesses": "2"}`, "'numprocesses' isn't an integer"},
		{"numprocesses float", `{"numprocesses": 2.5}`, "'numprocesses' isn't an integer"},
		{"max_retry bool", `{"max_retry": true}`, "'max_retry' isn't an integer"},
		{"max_age float", `{"max_age": 1.0}`, "'max_age' isn't an integer"},
		{"max_age_variance null", `{"max_age_variance": null}`, "'max_age_variance' isn't an integer"},
		{"stop_signal name", `{"stop_signal": "TERM"}`, "'stop_signal' isn't an integer"},
		{"warmup_delay string", `{"warmup_delay": "1"}`, "'warmup_delay' isn't a number"},
		{"graceful_timeout bool", `{"graceful_timeout": true}`, "'graceful_timeout' isn't a number"},
		{"retry_in string", `{"retry_in": "5"}`, "'retry_in' isn't a number"},
		{"uid float", `{"uid": 1.5}`, "'uid' isn't an integer or string"},
		{"gid bool", `{"gid": true}`, "'gid' isn't an integer or string"},
		{"gid list", `{"gid": [0]}`, "'gid' isn't an integer or string"},
		{"send_hup string", `{"send_hup": "true"}`, "'send_hup' isn't a valid boolean"},
		{"close_child_stderr int", `{"close_child_stderr": 1}`, "'close_child_stderr' isn't a valid boolean"},
		{"shell null", `{"shell": null}`, "'shell' isn't a valid boolean"},
		{"env string", `{"env": "A=b"}`, "'env' isn't a valid object"},
		{"env value int", `{"env": {"A": 1}}`, "'A' isn't a string"},
		{"stdout_stream string", `{"stdout_stream": "x"}`, "'stdout_stream' isn't a valid object"},
		{"stderr_stream without class", `{"stderr_stream": {"filename": "x"}}`, "'stderr_stream' must have a 'class' key"},
		{"rlimit float", `{"rlimit_nofile": 1.5}`, "1.5 rlimit value isn't a valid int"},
		{"free-form key", `{"flapping.attempts": 3}`, "unknown key 'flapping.attempts'"},
		{"autostart", `{"autostart": false}`, "unknown key 'autostart'"},
		{"one bad among good", `{"numprocesses": 2, "bogus": 1}`, "unknown key 'bogus'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			rep := e.call("set", `{"name": "idle", "waiting": true, "options": `+tc.options+`}`)
			checkErr(t, "set "+tc.options, rep, control.MessageError, tc.reason)
		})
	}
	// Hook names are checked, in a dict or one at a time. (Circus quotes
	// the whole dict, "Unknown hook {'before_nap': ...}"; naming the hook
	// is clearer.)
	for _, options := range []string{`{"hooks": {"before_nap": "m.f"}}`, `{"hooks.before_nap": "m.f"}`} {
		rep := e.call("set", `{"name": "idle", "options": `+options+`}`)
		if rep.Err == nil || rep.Err.Errno != control.MessageError || !strings.Contains(rep.Err.Reason, "Unknown hook") || !strings.Contains(rep.Err.Reason, "before_nap") {
			t.Errorf("set %s = %s, want errno 3 naming the unknown hook", options, render(t, rep))
		}
	}
	if rep := e.call("set", `{"name": "idle", "options": {"hooks": "before_start:m.f"}}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("set hooks as a string = %s, want errno 3", render(t, rep))
	}
	if rep := e.call("set", `{"name": "idle", "options": {"rlimit_nofile": "10"}}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("set rlimit_nofile as a string = %s, want errno 3", render(t, rep))
	}
	if rep := e.call("set", `{"name": "idle", "waiting": true, "options": {"rlimit_bogus": 10}}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("set rlimit_bogus = %s, want errno 3", render(t, rep))
	}
	e.fails("set", `{"name": "idle"}`, control.MessageError, "message invalid 'options' is missing")
	e.fails("set", `{"options": {"numprocesses": 2}}`, control.MessageError, "message invalid 'name' is missing")
	e.fails("set", `{"name": "nope", "options": {"numprocesses": 2}}`, control.MessageError, "program nope not found")
	if rep := e.call("set", `{"name": "idle", "options": ["numprocesses", 2]}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("set with options a list = %s, want errno 3", render(t, rep))
	}

	// Nothing was changed by any of it.
	want := `{"status": "ok", "time": 1700000000.5, "options": {"numprocesses": 1, "max_retry": 5, "env": {}, "uid": null, "send_hup": false}, "id": 1}`
	if got := e.ok("get", `{"name": "idle", "keys": ["numprocesses", "max_retry", "env", "uid", "send_hup"]}`); got != want {
		t.Errorf("after refused sets, get =\n%s\nwant\n%s", got, want)
	}
}

// Values of the right type are taken, and options shows them with
// Circus's types.
func TestSetAccepts(t *testing.T) {
	t.Parallel()
	e := start(t, setINI)
	out := filepath.Join(t.TempDir(), "out.log")
	for _, tc := range []struct {
		name, options string
		key, want     string // get key, its expected JSON
	}{
		{"numprocesses", `{"numprocesses": 3}`, "numprocesses", `3`},
		{"warmup_delay int", `{"warmup_delay": 1}`, "warmup_delay", `1.0`},
		{"graceful_timeout float", `{"graceful_timeout": 2.5}`, "graceful_timeout", `2.5`},
		{"retry_in", `{"retry_in": 7}`, "", ""},
		{"max_retry", `{"max_retry": -1}`, "max_retry", `-1`},
		{"max_age", `{"max_age": 3600, "max_age_variance": 60}`, "max_age", `3600`},
		{"stop_signal", `{"stop_signal": 2}`, "stop_signal", `2`},
		{"uid int", `{"uid": 0}`, "uid", `0`},
		{"uid string", `{"uid": "root"}`, "uid", `"root"`},
		{"gid int", `{"gid": 0}`, "gid", `0`},
		{"gid string", `{"gid": "root"}`, "gid", `"root"`},
		{"send_hup", `{"send_hup": true}`, "send_hup", `true`},
		{"close_child_stdout", `{"close_child_stdout": true}`, "close_child_stdout", `true`},
		{"env", `{"env": {"A": "b", "C": "d"}}`, "env", `{"A": "b", "C": "d"}`},
		{"hooks dict", `{"hooks": {"before_start": "mymod.hook"}}`, "", ""},
		{"one hook", `{"hooks.after_stop": "mymod.hook"}`, "", ""},
		{"stdout_stream", fmt.Sprintf(`{"stdout_stream": {"class": "FileStream", "filename": %q}}`, out), "stdout_stream_conf", fmt.Sprintf(`{"class": "FileStream", "filename": %q}`, out)},
		{"rlimit int", `{"rlimit_nofile": 1024}`, "", ""},
		{"rlimit null", `{"rlimit_core": null}`, "", ""},
		{"working_dir", `{"working_dir": "/tmp"}`, "working_dir", `"/tmp"`},
		{"cmd and args", fmt.Sprintf(`{"cmd": %q, "args": "sleep"}`, worker), "args", `"sleep"`},
		{"singleton", `{"numprocesses": 1, "singleton": true}`, "singleton", `true`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			got := e.ok("set", `{"name": "idle", "waiting": true, "options": `+tc.options+`}`)
			if want := `{"status": "ok", "time": 1700000000.5, "id": 1}`; got != want {
				t.Errorf("set %s =\n%s\nwant\n%s", tc.options, got, want)
			}
			if tc.key == "" {
				return
			}
			opts := replyObject(t, e.call("get", fmt.Sprintf(`{"name": "idle", "keys": [%q]}`, tc.key))).sub(t, "options")
			if got := string(opts.m[tc.key]); got != tc.want {
				t.Errorf("after set %s: %s = %s, want %s", tc.options, tc.key, got, tc.want)
			}
		})
	}
	// Setting options does not start a stopped watcher.
	if got, want := e.ok("status", `{"name": "idle"}`), `{"status": "stopped", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("status after sets =\n%s\nwant\n%s", got, want)
	}
	// One updated event per key set (hooks counts once, as sent).
	if n := len(e.events.Of(pubsub.Updated)); n != 25 {
		t.Errorf("%d updated events, want 25", n)
	}
}

// §2.5's effects on a running watcher: what a worker is made of reloads it
// gracefully (new pids), graceful_timeout is used from now on (same pids),
// numprocesses resizes.
func TestSetEffects(t *testing.T) {
	t.Parallel()
	e := start(t, setINI)
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`
	before := e.waitPool("sleeper", 1)
	if got := e.ok("set", `{"name": "sleeper", "waiting": true, "options": {"graceful_timeout": 7}}`); got != bare {
		t.Errorf("set graceful_timeout =\n%s\nwant\n%s", got, bare)
	}
	if after := e.pids("sleeper"); !slices.Equal(after, before) {
		t.Errorf("set graceful_timeout: pids %v -> %v, want the same", before, after)
	}
	if got, want := e.ok("get", `{"name": "sleeper", "keys": ["graceful_timeout"]}`), `{"status": "ok", "time": 1700000000.5, "options": {"graceful_timeout": 7.0}, "id": 1}`; got != want {
		t.Errorf("get after set =\n%s\nwant\n%s", got, want)
	}

	reloads := len(e.events.Of(pubsub.Reload))
	if got := e.ok("set", fmt.Sprintf(`{"name": "sleeper", "waiting": true, "options": {"cmd": "%s sleep again"}}`, worker)); got != bare {
		t.Errorf("set cmd =\n%s\nwant\n%s", got, bare)
	}
	after := e.pids("sleeper")
	if len(after) != 1 || after[0] == before[0] {
		t.Errorf("set cmd: pids %v -> %v, want one new worker", before, after)
	}
	if !testproc.Gone(before[0]) {
		t.Errorf("set cmd: old worker %d still exists after the waited set", before[0])
	}
	if n := len(e.events.Of(pubsub.Reload)) - reloads; n != 1 {
		t.Errorf("set cmd published %d reload events, want 1 (a graceful reload)", n)
	}

	before = after
	e.ok("set", `{"name": "sleeper", "waiting": true, "options": {"env": {"X": "y"}}}`)
	if after := e.pids("sleeper"); len(after) != 1 || after[0] == before[0] {
		t.Errorf("set env: pids %v -> %v, want one new worker", before, after)
	}

	e.ok("set", `{"name": "sleeper", "waiting": true, "options": {"numprocesses": 3}}`)
	if n := len(e.pids("sleeper")); n != 3 {
		t.Errorf("set numprocesses 3: %d workers once answered, want 3", n)
	}
	// Without waiting: a bare ok, then the change.
	if got := e.ok("set", `{"name": "sleeper", "options": {"numprocesses": 2}}`); got != bare {
		t.Errorf("set without waiting =\n%s\nwant\n%s", got, bare)
	}
	e.waitPool("sleeper", 2)
	// A resize by incr survives a later set of another key.
	e.ok("incr", `{"name": "sleeper", "waiting": true}`)
	e.ok("set", `{"name": "sleeper", "waiting": true, "options": {"max_retry": 3}}`)
	if got, want := e.ok("get", `{"name": "sleeper", "keys": ["numprocesses", "max_retry"]}`), `{"status": "ok", "time": 1700000000.5, "options": {"numprocesses": 3, "max_retry": 3}, "id": 1}`; got != want {
		t.Errorf("get after incr and set =\n%s\nwant\n%s", got, want)
	}
	if n := len(e.pids("sleeper")); n != 3 {
		t.Errorf("after incr and set max_retry: %d workers, want 3", n)
	}
}

// A singleton runs one process: numprocesses above 1 is refused.
func TestSetSingleton(t *testing.T) {
	t.Parallel()
	e := start(t, setINI)
	pid := e.waitPool("single", 1)
	rep := e.call("set", `{"name": "single", "waiting": true, "options": {"numprocesses": 2}}`)
	if rep.Err == nil || rep.Err.Errno != control.MessageError || !strings.Contains(rep.Err.Reason, "singleton") {
		t.Errorf("set numprocesses 2 on a singleton = %s, want errno 3 about the singleton", render(t, rep))
	}
	// Circus refuses it at once, waiting or not: set_opt raises
	// ValueError('Singleton watcher has a single process') before any
	// future exists, so circusctl's set (which does not wait) sees the
	// error too.
	rep = e.call("set", `{"name": "single", "options": {"numprocesses": 2}}`)
	if rep.Err == nil {
		t.Errorf("set numprocesses 2 on a singleton without waiting = %s, want an error", render(t, rep))
	}
	if got := e.pids("single"); !slices.Equal(got, pid) {
		t.Errorf("singleton pids %v -> %v after refused sets", pid, got)
	}
}

func TestAdd(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w1]
cmd = WORKER sleep
`)
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`
	// As circusctl sends it: name, cmd, start, no waiting.
	if got := e.ok("add", fmt.Sprintf(`{"name": "New", "cmd": "%s sleep", "start": false}`, worker)); got != bare {
		t.Errorf("add =\n%s\nwant\n%s", got, bare)
	}
	testproc.WaitFor(t, "the new watcher", 10*time.Second, func() bool { return e.a.Watcher("new") != nil })
	if got, want := e.ok("status", `{"name": "new"}`), `{"status": "stopped", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("status of an added watcher =\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok("list", ""), `{"status": "ok", "time": 1700000000.5, "watchers": ["new", "w1"], "id": 1}`; got != want {
		t.Errorf("list after add =\n%s\nwant\n%s", got, want)
	}

	// A name taken in another case: Circus's AlreadyExist("%r already
	// exist" % name), errno 5.
	cmd := fmt.Sprintf(`"cmd": "%s sleep"`, worker)
	e.fails("add", `{"name": "W1", `+cmd+`, "waiting": true}`, control.CommandError, "'W1' already exist")

	// start + waiting: started and kept at the top level.
	rep := e.call("add", `{"name": "pool", `+cmd+`, "start": true, "waiting": true, "options": {"numprocesses": 2, "env": {"A": "b"}}}`)
	pids := e.pids("pool")
	if len(pids) != 2 {
		t.Fatalf("add start waiting: %d workers once answered, want 2", len(pids))
	}
	if got, want := sortLists(render(t, rep)), fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "started": %s, "kept": [], "id": 1}`, ints(pids)); got != want {
		t.Errorf("add start waiting =\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok("get", `{"name": "pool", "keys": ["env", "numprocesses"]}`), `{"status": "ok", "time": 1700000000.5, "options": {"env": {"A": "b"}, "numprocesses": 2}, "id": 1}`; got != want {
		t.Errorf("get of an added watcher =\n%s\nwant\n%s", got, want)
	}
	// cmd and args apart; start without waiting answers at once.
	if got := e.ok("add", fmt.Sprintf(`{"name": "split", "cmd": %q, "args": "sleep", "start": true}`, worker)); got != bare {
		t.Errorf("add start without waiting =\n%s\nwant\n%s", got, bare)
	}
	testproc.WaitFor(t, "split to run", 10*time.Second, func() bool {
		return e.a.Watcher("split") != nil && len(e.pids("split")) == 1
	})

	// Bad requests change nothing.
	e.fails("add", `{"name": "bad", `+cmd+`, "options": {"numprocesses": "2"}}`, control.MessageError, "'numprocesses' isn't an integer")
	e.fails("add", `{"name": "bad", `+cmd+`, "options": {"flapping.attempts": 2}}`, control.MessageError, "unknown key 'flapping.attempts'")
	e.fails("add", `{"name": "bad"}`, control.MessageError, "message invalid 'cmd' is missing")
	e.fails("add", `{`+cmd+`}`, control.MessageError, "message invalid 'name' is missing")
	if rep := e.call("add", `{"name": "bad", `+cmd+`, "waiting": true, "options": {"numprocesses": 2, "singleton": true}}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("add of a singleton with 2 processes = %s, want errno 3", render(t, rep))
	}
	if rep := e.call("add", `{"name": "b[a]d", `+cmd+`}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("add of a name with brackets = %s, want errno 3", render(t, rep))
	}
	if rep := e.call("add", `{"name": "bad", `+cmd+`, "options": ["numprocesses"]}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("add with options a list = %s, want errno 3", render(t, rep))
	}
	if e.a.Watcher("bad") != nil {
		t.Errorf("a refused add created the watcher")
	}
}

// Circus's add without start is synchronous (arbiter.add_watcher raises
// AlreadyExist at once), so circusctl's add of a taken name, sent without
// waiting, gets errno 5.
func TestAddDuplicateWithoutWaiting(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w1]
cmd = WORKER sleep
`)
	e.fails("add", fmt.Sprintf(`{"name": "W1", "cmd": "%s sleep", "start": false}`, worker), control.CommandError, "'W1' already exist")
}

func TestRm(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:gone]
cmd = WORKER sleep

[watcher:kept]
cmd = WORKER sleep

[watcher:later]
cmd = WORKER sleep
`)
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`
	gone := e.waitPool("gone", 1)[0]
	if got := e.ok("rm", `{"name": "GONE", "waiting": true}`); got != bare {
		t.Errorf("rm =\n%s\nwant\n%s", got, bare)
	}
	if !testproc.Gone(gone) {
		t.Errorf("rm: worker %d still exists after the waited rm", gone)
	}
	e.fails("status", `{"name": "gone"}`, control.MessageError, "program gone not found")
	if n := len(e.events.Of(pubsub.Remove)); n != 1 {
		t.Errorf("%d remove events, want 1", n)
	}

	// nostop: the worker is left running, unsupervised.
	kept := e.waitPool("kept", 1)[0]
	t.Cleanup(func() {
		// Before the arbiter stops (cleanups run last-in first-out), so
		// that its orphan reaper collects the worker.
		_ = syscall.Kill(kept, syscall.SIGKILL)
		testproc.WaitFor(t, "the abandoned worker reaped", 10*time.Second, func() bool { return testproc.Gone(kept) })
	})
	e.ok("rm", `{"name": "kept", "nostop": true, "waiting": true}`)
	if testproc.DeadOrZombie(kept) {
		t.Errorf("rm nostop: worker %d died", kept)
	}
	if e.a.Watcher("kept") != nil {
		t.Errorf("rm nostop: the watcher is still there")
	}

	// Without waiting: a bare ok, then the watcher is gone.
	later := e.waitPool("later", 1)[0]
	if got := e.ok("rm", `{"name": "later"}`); got != bare {
		t.Errorf("rm without waiting =\n%s\nwant\n%s", got, bare)
	}
	testproc.WaitFor(t, "later removed", 20*time.Second, func() bool { return e.a.Watcher("later") == nil && testproc.Gone(later) })
	if got, want := e.ok("list", ""), `{"status": "ok", "time": 1700000000.5, "watchers": [], "id": 1}`; got != want {
		t.Errorf("list after rm =\n%s\nwant\n%s", got, want)
	}
	e.fails("rm", `{"name": "nope"}`, control.MessageError, "program nope not found")
	e.fails("rm", `{}`, control.MessageError, "message invalid 'name' is missing")
}
