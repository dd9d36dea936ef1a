package commands_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// matchINI has two watchers whose names start with w, one that does not,
// and one started only on request.
const matchINI = `
[watcher:w1]
cmd = WORKER sleep
priority = 2

[watcher:w2]
cmd = WORKER sleep
priority = 1

[watcher:x]
cmd = WORKER sleep

[watcher:manual]
cmd = WORKER sleep
autostart = false
`

// states returns the states of the named watchers, for messages.
func (e *env) states(names ...string) map[string]arbiter.State {
	e.t.Helper()
	m := map[string]arbiter.State{}
	for _, n := range names {
		m[n] = e.state(n)
	}
	return m
}

func (e *env) wantStates(what string, want map[string]arbiter.State) {
	e.t.Helper()
	var names []string
	for n := range want {
		names = append(names, n)
	}
	if got := e.states(names...); fmt.Sprint(got) != fmt.Sprint(want) {
		e.t.Errorf("after %s: states %v, want %v", what, got, want)
	}
}

// start, stop and restart select watchers as Circus does: glob (the
// default) and regex on lower-cased names, simple by exact name; several
// matches answer without info, one answers info when waited for.
func TestStartStopMatch(t *testing.T) {
	t.Parallel()
	e := start(t, matchINI)
	const (
		active  = arbiter.Active
		stopped = arbiter.Stopped
	)
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`

	if got := e.ok("stop", `{"name": "W*", "waiting": true}`); got != bare {
		t.Errorf("stop W* =\n%s\nwant\n%s", got, bare)
	}
	e.wantStates("stop W*", map[string]arbiter.State{"w1": stopped, "w2": stopped, "x": active})

	if got := e.ok("start", `{"name": "^w", "match": "regex", "waiting": true}`); got != bare {
		t.Errorf("start ^w regex =\n%s\nwant\n%s", got, bare)
	}
	e.wantStates("start ^w", map[string]arbiter.State{"w1": active, "w2": active, "x": active})

	// One match, waited for: stop's info is null.
	if got, want := e.ok("stop", `{"name": "w1", "match": "simple", "waiting": true}`), `{"status": "ok", "time": 1700000000.5, "info": null, "id": 1}`; got != want {
		t.Errorf("stop w1 simple =\n%s\nwant\n%s", got, want)
	}
	e.wantStates("stop w1", map[string]arbiter.State{"w1": stopped, "w2": active})

	// start's info is {started, kept}.
	rep := e.call("start", `{"name": "W1", "waiting": true}`)
	pids := e.pids("w1")
	if got, want := sortLists(render(t, rep)), fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "info": {"started": %s, "kept": []}, "id": 1}`, ints(pids)); got != want {
		t.Errorf("start W1 =\n%s\nwant\n%s", got, want)
	}
	// Starting an active watcher keeps its workers.
	if got, want := sortLists(e.ok("start", `{"name": "w1", "waiting": true}`)), fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "info": {"started": [], "kept": %s}, "id": 1}`, ints(pids)); got != want {
		t.Errorf("start of an active w1 =\n%s\nwant\n%s", got, want)
	}

	// Without waiting: a bare ok at once, the work done after.
	if got := e.ok("stop", `{"name": "x"}`); got != bare {
		t.Errorf("stop x without waiting =\n%s\nwant\n%s", got, bare)
	}
	testproc.WaitFor(t, "x to stop", 20*time.Second, func() bool { return e.state("x") == stopped })

	// Python's re.match is anchored at the start only.
	e.fails("stop", `{"name": "1$", "match": "regex"}`, control.MessageError, "program 1$ not found")
	e.fails("stop", `{"name": "nope*"}`, control.MessageError, "program nope* not found")
	e.fails("stop", `{"name": "w", "match": "simple"}`, control.MessageError, "program w not found")
	e.fails("start", `{"name": "w1", "match": "fuzzy"}`, control.MessageError, "unknown match method fuzzy")
	e.fails("restart", `{"name": "nope", "waiting": true}`, control.MessageError, "program nope not found")

	// No name: stop all; start only the autostart ones.
	if got := e.ok("stop", `{"waiting": true}`); got != bare {
		t.Errorf("stop all =\n%s\nwant\n%s", got, bare)
	}
	e.wantStates("stop all", map[string]arbiter.State{"w1": stopped, "w2": stopped, "x": stopped, "manual": stopped})
	if got := e.ok("start", `{"waiting": true}`); got != bare {
		t.Errorf("start all =\n%s\nwant\n%s", got, bare)
	}
	e.wantStates("start all", map[string]arbiter.State{"w1": active, "w2": active, "x": active, "manual": stopped})
}

// Circus's glob is fnmatch, where [!...] negates a class; "w[!2]" names
// w1 only.
func TestGlobNegatedClass(t *testing.T) {
	t.Parallel()
	e := start(t, matchINI)
	e.ok("stop", `{"name": "w[!2]", "waiting": true}`)
	e.wantStates("stop w[!2]", map[string]arbiter.State{"w1": arbiter.Stopped, "w2": arbiter.Active})
}

func TestRestart(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:pool]
cmd = WORKER sleep
numprocesses = 2

[watcher:other]
cmd = WORKER sleep
`)
	before := e.waitPool("pool", 2)
	rep := e.call("restart", `{"name": "pool", "waiting": true}`)
	after := e.pids("pool")
	if len(after) != 2 || slices.ContainsFunc(after, func(p int) bool { return slices.Contains(before, p) }) {
		t.Fatalf("restart: pids %v -> %v, want two new ones", before, after)
	}
	want := fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "info": {"stopped": %s, "started": %s, "kept": []}, "id": 1}`, ints(before), ints(after))
	if got := sortLists(render(t, rep)); got != want {
		t.Errorf("restart pool =\n%s\nwant\n%s", got, want)
	}
	for _, p := range before {
		if !testproc.Gone(p) {
			t.Errorf("old worker %d still exists after the waited restart", p)
		}
	}

	// A stopped watcher is started: nothing stopped, nothing kept.
	e.ok("stop", `{"name": "pool", "waiting": true}`)
	rep = e.call("restart", `{"name": "pool", "waiting": true}`)
	after = e.pids("pool")
	want = fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "info": {"stopped": [], "started": %s, "kept": []}, "id": 1}`, ints(after))
	if got := sortLists(render(t, rep)); got != want {
		t.Errorf("restart of a stopped pool =\n%s\nwant\n%s", got, want)
	}

	// No name: every watcher, new workers everywhere.
	pool, other := e.pids("pool"), e.pids("other")
	if got, want := e.ok("restart", `{"waiting": true}`), `{"status": "ok", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("restart all =\n%s\nwant\n%s", got, want)
	}
	if p, o := e.waitPool("pool", 2), e.waitPool("other", 1); slices.Equal(p, pool) || slices.Equal(o, other) {
		t.Errorf("restart all kept workers: pool %v -> %v, other %v -> %v", pool, p, other, o)
	}
}

func TestReload(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:pool]
cmd = WORKER sleep
numprocesses = 2

[watcher:other]
cmd = WORKER sleep
`)
	for _, tc := range []struct {
		name  string
		props string
	}{
		{"graceful", `{"name": "pool", "waiting": true}`},
		{"sequential", `{"name": "pool", "sequential": true, "waiting": true}`},
		{"graceful=false", `{"name": "pool", "graceful": false, "waiting": true}`},
	} {
		before := e.waitPool("pool", 2)
		reloads := len(e.events.Of(pubsub.Reload))
		rep := e.call("reload", tc.props)
		after := e.pids("pool")
		if len(after) != 2 || slices.ContainsFunc(after, func(p int) bool { return slices.Contains(before, p) }) {
			t.Errorf("reload %s: pids %v -> %v, want two new ones", tc.name, before, after)
			continue
		}
		want := fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "info": {"stopped": %s, "started": %s, "kept": []}, "id": 1}`, ints(before), ints(after))
		if got := sortLists(render(t, rep)); got != want {
			t.Errorf("reload %s =\n%s\nwant\n%s", tc.name, got, want)
		}
		// A graceful reload says so on pubsub; a stop and start does not.
		if n := len(e.events.Of(pubsub.Reload)) - reloads; (n == 1) != (tc.name != "graceful=false") {
			t.Errorf("reload %s published %d reload events", tc.name, n)
		}
	}

	// Without waiting: a bare ok, then new workers.
	before := e.waitPool("pool", 2)
	if got, want := e.ok("reload", `{"name": "pool"}`), `{"status": "ok", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("reload without waiting =\n%s\nwant\n%s", got, want)
	}
	testproc.WaitFor(t, "the pool reloaded", 20*time.Second, func() bool {
		p := e.pids("pool")
		return len(p) == 2 && !slices.Contains(p, before[0]) && !slices.Contains(p, before[1])
	})

	// No name: every watcher.
	pool, other := e.waitPool("pool", 2), e.waitPool("other", 1)
	if got, want := e.ok("reload", `{"waiting": true}`), `{"status": "ok", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("reload all =\n%s\nwant\n%s", got, want)
	}
	if p, o := e.waitPool("pool", 2), e.waitPool("other", 1); slices.Equal(p, pool) || slices.Equal(o, other) {
		t.Errorf("reload all kept workers: pool %v -> %v, other %v -> %v", pool, p, other, o)
	}
	e.fails("reload", `{"name": "nope"}`, control.MessageError, "program nope not found")
}

func TestIncrDecr(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:pool]
cmd = WORKER sleep

[watcher:single]
cmd = WORKER sleep
singleton = true
`)
	e.waitPool("pool", 1)
	// Waited for: the new numprocesses, once the pool has that size.
	if got, want := e.ok("incr", `{"name": "pool", "waiting": true}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 2, "id": 1}`; got != want {
		t.Errorf("incr =\n%s\nwant\n%s", got, want)
	}
	if n := len(e.pids("pool")); n != 2 {
		t.Errorf("after a waited incr: %d workers, want 2", n)
	}
	if got, want := e.ok("incr", `{"name": "pool", "nb": 3, "waiting": true}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 5, "id": 1}`; got != want {
		t.Errorf("incr nb=3 =\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok("decr", `{"name": "pool", "nb": 2, "waiting": true}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 3, "id": 1}`; got != want {
		t.Errorf("decr nb=2 =\n%s\nwant\n%s", got, want)
	}
	if n := len(e.pids("pool")); n != 3 {
		t.Errorf("after a waited decr: %d workers, want 3", n)
	}
	// Without waiting: a bare ok, then the pool reaches its size.
	if got, want := e.ok("decr", `{"name": "pool"}`), `{"status": "ok", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("decr without waiting =\n%s\nwant\n%s", got, want)
	}
	e.waitPool("pool", 2)
	e.ok("incr", `{"name": "pool", "nb": 2}`)
	e.waitPool("pool", 4)
	// Never below 0.
	if got, want := e.ok("decr", `{"name": "pool", "nb": 10, "waiting": true}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 0, "id": 1}`; got != want {
		t.Errorf("decr nb=10 =\n%s\nwant\n%s", got, want)
	}
	e.fails("incr", `{"name": "pool", "nb": -1}`, control.MessageError, "message invalid 'nb' must be a positive integer")
	e.fails("incr", `{"name": "nope"}`, control.MessageError, "program nope not found")
	e.fails("decr", `{}`, control.MessageError, "message invalid 'name' is missing")

	// A singleton is not resized.
	want := `{"status": "ok", "time": 1700000000.5, "numprocesses": 1, "singleton": true, "id": 1}`
	if got := e.ok("incr", `{"name": "single", "waiting": true}`); got != want {
		t.Errorf("incr of a singleton =\n%s\nwant\n%s", got, want)
	}
	if n := len(e.pids("single")); n != 1 {
		t.Errorf("singleton has %d workers after incr, want 1", n)
	}
}

// Circus answers incr or decr of a singleton at once, with its fields,
// waiting or not: it returns a dict, not a future (incrproc.py).
func TestIncrSingletonWithoutWaiting(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:single]
cmd = WORKER sleep
singleton = true
`)
	want := `{"status": "ok", "time": 1700000000.5, "numprocesses": 1, "singleton": true, "id": 1}`
	if got := e.ok("incr", `{"name": "single"}`); got != want {
		t.Errorf("incr of a singleton without waiting =\n%s\nwant\n%s", got, want)
	}
	if got := e.ok("decr", `{"name": "single"}`); got != want {
		t.Errorf("decr of a singleton without waiting =\n%s\nwant\n%s", got, want)
	}
}

func TestKill(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:pool]
cmd = WORKER sleep
numprocesses = 2
`)
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`
	before := e.waitPool("pool", 2)
	// circusctl sends the pid as a string.
	if got := e.ok("kill", fmt.Sprintf(`{"name": "pool", "pid": "%d", "waiting": true}`, before[0])); got != bare {
		t.Errorf("kill =\n%s\nwant\n%s", got, bare)
	}
	if !testproc.Gone(before[0]) {
		t.Errorf("killed worker %d still exists after a waited kill", before[0])
	}
	after := e.waitPool("pool", 2)
	if slices.Contains(after, before[0]) || !slices.Contains(after, before[1]) {
		t.Errorf("kill %d: pids %v -> %v, want it replaced and the other kept", before[0], before, after)
	}
	// A pid that is not a worker: ok, as in Circus.
	if got := e.ok("kill", `{"name": "pool", "pid": "424242", "waiting": true}`); got != bare {
		t.Errorf("kill of an unknown pid =\n%s\nwant\n%s", got, bare)
	}
	// A signal and a timeout, as strings too (circusctl's --signum and
	// --graceful_timeout).
	reaps := len(e.events.Of(pubsub.Reap))
	e.ok("kill", fmt.Sprintf(`{"name": "pool", "pid": %d, "signum": "KILL", "graceful_timeout": "0.5", "waiting": true}`, after[0]))
	var codes []int
	for _, ev := range e.events.Of(pubsub.Reap)[reaps:] {
		codes = append(codes, ev.ExitCode)
	}
	if !slices.Equal(codes, []int{-9}) {
		t.Errorf("kill signum=KILL: reap exit codes %v, want [-9]", codes)
	}
	// No pid: every worker, replaced.
	before = e.waitPool("pool", 2)
	e.ok("kill", `{"name": "pool", "waiting": true}`)
	after = e.waitPool("pool", 2)
	if slices.ContainsFunc(after, func(p int) bool { return slices.Contains(before, p) }) {
		t.Errorf("kill all: pids %v -> %v, want all replaced", before, after)
	}
	// Without waiting: a bare ok at once.
	if got := e.ok("kill", fmt.Sprintf(`{"name": "pool", "pid": %d}`, after[0])); got != bare {
		t.Errorf("kill without waiting =\n%s\nwant\n%s", got, bare)
	}
	testproc.WaitFor(t, "the killed worker replaced", 20*time.Second, func() bool {
		p := e.pids("pool")
		return len(p) == 2 && !slices.Contains(p, after[0])
	})
	e.fails("kill", `{"name": "pool", "pid": "abc"}`, control.MessageError, "message invalid 'pid' must be an integer")
	e.fails("kill", `{"name": "nope"}`, control.MessageError, "program nope not found")
}

// reapedWith waits for a reap event of pid and returns its exit code.
func (e *env) reapedWith(pid int) int {
	e.t.Helper()
	code := 0
	testproc.WaitFor(e.t, fmt.Sprintf("the reap of %d", pid), 20*time.Second, func() bool {
		for _, ev := range e.events.Of(pubsub.Reap) {
			if ev.Pid == pid {
				code = ev.ExitCode
				return true
			}
		}
		return false
	})
	return code
}

func TestSignal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	kidsFile, kidFile, outsideFile := filepath.Join(dir, "kids"), filepath.Join(dir, "kid"), filepath.Join(dir, "outside")
	e := start(t, `
[watcher:pool]
cmd = WORKER sleep
numprocesses = 2

[watcher:kids]
cmd = WORKER ignoreterm `+kidsFile+`
graceful_timeout = 0.2

[watcher:kid]
cmd = WORKER ignoreterm `+kidFile+`
graceful_timeout = 0.2

[watcher:outside]
cmd = WORKER childoutside `+outsideFile+`
stop_children = true
`)
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`
	// Every spelling of SIGHUP; testworker dies of it, and is replaced.
	for _, signum := range []string{`"HUP"`, `"SIGHUP"`, `"hup"`, `1`} {
		pids := e.waitPool("pool", 2)
		got := e.ok("signal", fmt.Sprintf(`{"name": "pool", "pid": %d, "signum": %s}`, pids[0], signum))
		if got != bare {
			t.Errorf("signal signum=%s =\n%s\nwant\n%s", signum, got, bare)
		}
		if code := e.reapedWith(pids[0]); code != -int(syscall.SIGHUP) {
			t.Errorf("signal signum=%s: worker %d exited with %d, want %d", signum, pids[0], code, -int(syscall.SIGHUP))
		}
		if !slices.Contains(e.pids("pool"), pids[1]) {
			t.Errorf("signal signum=%s to %d reached %d too", signum, pids[0], pids[1])
		}
	}
	// No pid: every worker.
	pids := e.waitPool("pool", 2)
	e.ok("signal", `{"name": "pool", "signum": "HUP"}`)
	for _, p := range pids {
		e.reapedWith(p)
	}

	// children: the worker's children, not the worker.
	worker, child := waitPids(t, kidsFile)
	e.ok("signal", fmt.Sprintf(`{"name": "kids", "pid": %d, "signum": "HUP", "children": true}`, worker))
	testproc.WaitFor(t, "the child to die of children=true", 10*time.Second, func() bool { return testproc.DeadOrZombie(child) })
	if testproc.DeadOrZombie(worker) {
		t.Errorf("signal children=true reached the worker %d itself", worker)
	}

	// childpid: that child of the worker only.
	worker, child = waitPids(t, kidFile)
	e.ok("signal", fmt.Sprintf(`{"name": "kid", "pid": %d, "childpid": %d, "signum": "SIGHUP"}`, worker, child))
	testproc.WaitFor(t, "the child to die of childpid", 10*time.Second, func() bool { return testproc.DeadOrZombie(child) })
	if testproc.DeadOrZombie(worker) {
		t.Errorf("signal childpid reached the worker %d itself", worker)
	}
	// A pid that is not a child of that worker is refused.
	if rep := e.call("signal", fmt.Sprintf(`{"name": "kid", "pid": %d, "childpid": %d, "signum": "HUP"}`, worker, os.Getpid())); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("signal childpid of another process = %s, want errno 3", render(t, rep))
	}

	// recursive: the worker and its descendants, even one that left the
	// worker's process group (which the group kill at its reap misses).
	worker, child = waitPids(t, outsideFile)
	e.ok("signal", fmt.Sprintf(`{"name": "outside", "pid": %d, "signum": "HUP", "recursive": true}`, worker))
	if code := e.reapedWith(worker); code != -int(syscall.SIGHUP) {
		t.Errorf("signal recursive: worker exited with %d, want %d", code, -int(syscall.SIGHUP))
	}
	testproc.WaitFor(t, "the child outside the group to die of recursive", 10*time.Second, func() bool { return testproc.DeadOrZombie(child) })

	// A childpid needs its pid (Circus: "cannot specify childpid without
	// pid"); an unknown signal is refused.
	if rep := e.call("signal", `{"name": "kid", "childpid": 5, "signum": "HUP"}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("signal childpid without pid = %s, want errno 3", render(t, rep))
	}
	for _, signum := range []string{`"NOPE"`, `0`, `65`, `1.5`, `true`} {
		if rep := e.call("signal", `{"name": "kid", "signum": `+signum+`}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
			t.Errorf("signal signum=%s = %s, want errno 3", signum, render(t, rep))
		}
	}
	// Circus only logs a pid that is not a worker; the arbiter refuses to
	// signal what it does not supervise (errno 3).
	if rep := e.call("signal", `{"name": "kid", "pid": 424242, "signum": "HUP"}`); rep.Err == nil || rep.Err.Errno != control.MessageError {
		t.Errorf("signal of an unknown pid = %s, want errno 3", render(t, rep))
	}
	e.fails("signal", `{"name": "kid"}`, control.MessageError, "message invalid 'signum' is missing")
	e.fails("signal", `{"name": "nope", "signum": "HUP"}`, control.MessageError, "program nope not found")
}

// quit ends Run through Options.Quit; waited for, it answers once Run has
// returned (Options.Stopped).
func TestQuit(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w]
cmd = WORKER sleep
`)
	pid := e.waitPool("w", 1)[0]
	if got, want := e.ok("quit", `{"waiting": true}`), `{"status": "ok", "time": 1700000000.5, "id": 1}`; got != want {
		t.Errorf("quit =\n%s\nwant\n%s", got, want)
	}
	select {
	case <-e.stopped:
	default:
		t.Fatal("quit with waiting answered before Run returned")
	}
	if !testproc.Gone(pid) {
		t.Errorf("worker %d outlived quit", pid)
	}

	// Without waiting: ok at once, Run ends soon after.
	e2 := start(t, `
[watcher:w]
cmd = WORKER sleep
`)
	e2.ok("quit", "")
	select {
	case <-e2.stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of quit")
	}

	// A table without Quit refuses.
	tab, err := commands.New(e2.a, commands.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	rep := tab.Handle(context.Background(), request(t, "quit", ""))
	checkErr(t, "quit without Options.Quit", rep, control.CommandError, "quit is not available here")
}

// reloadconfig applies the file as it now is: a watcher whose numprocesses
// alone changed is resized in place, a new one starts, a removed one stops.
// A file that does not load is refused, waiting or not, and nothing
// changes.
func TestReloadConfig(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:a]
cmd = WORKER sleep
`)
	path := e.a.Config().File
	write := func(ini string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(ini, "WORKER", worker)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const bare = `{"status": "ok", "time": 1700000000.5, "id": 1}`
	first := e.waitPool("a", 1)[0]
	write(`
[watcher:a]
cmd = WORKER sleep
numprocesses = 2

[watcher:b]
cmd = WORKER sleep
`)
	if got := e.ok("reloadconfig", `{"waiting": true}`); got != bare {
		t.Errorf("reloadconfig =\n%s\nwant\n%s", got, bare)
	}
	if a := e.pids("a"); len(a) != 2 || !slices.Contains(a, first) {
		t.Errorf("reloadconfig: a's pids %v, want 2 with %d kept", a, first)
	}
	if st := e.state("b"); st != arbiter.Active {
		t.Errorf("reloadconfig: new watcher b is %v, want active", st)
	}

	write("[watcher:c]\nnumprocesses = x\n")
	rep := e.call("reloadconfig", "")
	if rep.Err == nil || rep.Err.Errno != control.MessageError || !strings.HasPrefix(rep.Err.Reason, "reloadconfig: ") || !strings.HasSuffix(rep.Err.Reason, "; nothing was changed") {
		t.Errorf("reloadconfig of a bad file = %s, want errno 3 saying nothing was changed", render(t, rep))
	}
	if got, want := e.ok("list", ""), `{"status": "ok", "time": 1700000000.5, "watchers": ["a", "b"], "id": 1}`; got != want {
		t.Errorf("list after a refused reloadconfig =\n%s\nwant\n%s", got, want)
	}

	// Without waiting: a bare ok, then the change.
	write(`
[watcher:a]
cmd = WORKER sleep
numprocesses = 2
`)
	if got := e.ok("reloadconfig", ""); got != bare {
		t.Errorf("reloadconfig without waiting =\n%s\nwant\n%s", got, bare)
	}
	testproc.WaitFor(t, "b removed", 20*time.Second, func() bool { return e.a.Watcher("b") == nil })
}
