package commands_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// pending is a command accepted in its turn (as the server's reader does)
// whose answer is awaited in a goroutine of its own (as the server does).
type pending struct {
	what  string
	reply chan control.Reply
}

// accept queues cmd through Accept and starts waiting for its reply.
func (e *env) accept(cmd, props string) pending {
	e.t.Helper()
	wait := e.tab.Accept(request(e.t, cmd, props))
	p := pending{what: cmd + " " + props, reply: make(chan control.Reply, 1)}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		p.reply <- wait(ctx)
	}()
	return p
}

// await returns p's reply, failing the test after a minute.
func (p pending) await(t *testing.T) control.Reply {
	t.Helper()
	select {
	case rep := <-p.reply:
		if rep.Err != nil {
			t.Errorf("%s = errno %d %q", p.what, rep.Err.Errno, rep.Err.Reason)
		}
		return rep
	case <-time.After(70 * time.Second):
		t.Fatalf("no reply to %s", p.what)
		return control.Reply{}
	}
}

// done reports whether p has answered, without waiting.
func (p pending) done() bool { return len(p.reply) > 0 }

// Commands on one watcher apply in the order they came, sent without
// waiting for each other. Waited for, each reply shows its step (0, 3, 2,
// 4 holds for this order only). Not waited for, only the end shows: decr 2
// clamps at 0 only when it runs before any incr, so most reorderings end
// at 3 or 5, not 4.
func TestOneWatcherInOrder(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:pool]
cmd = WORKER sleep
`)
	t.Run("waiting", func(t *testing.T) {
		e := e.on(t)
		e.waitPool("pool", 1)
		ps := []pending{
			e.accept("decr", `{"name": "pool", "nb": 2, "waiting": true}`),
			e.accept("incr", `{"name": "pool", "nb": 3, "waiting": true}`),
			e.accept("decr", `{"name": "pool", "nb": 1, "waiting": true}`),
			e.accept("incr", `{"name": "pool", "nb": 2, "waiting": true}`),
		}
		var got []string
		for _, p := range ps {
			got = append(got, render(t, p.await(t)))
		}
		var want []string
		for _, n := range []int{0, 3, 2, 4} {
			want = append(want, fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "numprocesses": %d, "id": 1}`, n))
		}
		if !slices.Equal(got, want) {
			t.Errorf("replies\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		e.waitPool("pool", 4)
	})
	t.Run("not waiting", func(t *testing.T) {
		e := e.on(t)
		e.ok("decr", `{"name": "pool", "nb": 3, "waiting": true}`) // back to 1
		e.accept("decr", `{"name": "pool", "nb": 2}`)
		e.accept("incr", `{"name": "pool", "nb": 3}`)
		e.accept("decr", `{"name": "pool", "nb": 1}`)
		e.accept("incr", `{"name": "pool", "nb": 2}`)
		// incr by 0, waited for, answers after everything before it.
		last := e.accept("incr", `{"name": "pool", "nb": 0, "waiting": true}`)
		rep := last.await(t)
		if got, want := render(t, rep), `{"status": "ok", "time": 1700000000.5, "numprocesses": 4, "id": 1}`; got != want {
			t.Errorf("final incr 0 =\n%s\nwant\n%s", got, want)
		}
		e.waitPool("pool", 4)
	})
}

// A slow stop of one watcher (a worker that ignores SIGTERM, waited out
// for graceful_timeout) delays no command on another; a later command on
// the same watcher waits its turn.
func TestSlowStopDoesNotBlockOtherWatcher(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:a]
cmd = WORKER ignoreterm DIR/pids
graceful_timeout = 3

[watcher:b]
cmd = WORKER sleep
`)
	waitPids(t, filepath.Join(filepath.Dir(e.a.Config().File), "pids"))
	stopA := e.accept("stop", `{"name": "a", "waiting": true}`)
	incrA := e.accept("incr", `{"name": "a", "waiting": true}`)
	testproc.WaitFor(t, "a to be stopping", 10*time.Second, func() bool { return e.state("a") == arbiter.Stopping })

	incrB := e.accept("incr", `{"name": "b", "waiting": true}`)
	if got, want := render(t, incrB.await(t)), `{"status": "ok", "time": 1700000000.5, "numprocesses": 2, "id": 1}`; got != want {
		t.Errorf("incr b =\n%s\nwant\n%s", got, want)
	}
	if stopA.done() || incrA.done() {
		t.Errorf("stop a done %v, incr a done %v before incr b answered; want both pending (a ignores SIGTERM for 3s)", stopA.done(), incrA.done())
	}
	if st := e.state("a"); st != arbiter.Stopping {
		t.Errorf("a is %v when b's incr answered, want stopping", st)
	}

	// incr a was queued behind stop a: it answers after it, on a stopped
	// watcher that keeps the new size for its next start.
	if got, want := render(t, incrA.await(t)), `{"status": "ok", "time": 1700000000.5, "numprocesses": 2, "id": 1}`; got != want {
		t.Errorf("incr a =\n%s\nwant\n%s", got, want)
	}
	if !stopA.done() {
		t.Errorf("incr a answered before the stop a sent before it")
	}
	if got, want := render(t, stopA.await(t)), `{"status": "ok", "time": 1700000000.5, "info": null, "id": 1}`; got != want {
		t.Errorf("stop a =\n%s\nwant\n%s", got, want)
	}
	if st := e.state("a"); st != arbiter.Stopped {
		t.Errorf("a is %v after stop and incr, want stopped", st)
	}
}

// A command on all watchers and a later one on a single watcher apply in
// the order sent, as in Circus (one lock, one command at a time): "stop"
// then "start fast" leaves fast running. The stop of the low-priority
// watcher, which ignores SIGTERM, holds the stop of fast back for 2s,
// during which start fast must wait its turn.
func TestStopAllThenStartOneInOrder(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:slow]
cmd = WORKER ignoreterm DIR/pids
graceful_timeout = 2
priority = 0

[watcher:fast]
cmd = WORKER sleep
priority = 10
`)
	waitPids(t, filepath.Join(filepath.Dir(e.a.Config().File), "pids"))
	stopAll := e.accept("stop", `{"waiting": true}`)
	startFast := e.accept("start", `{"name": "fast", "waiting": true}`)
	startFast.await(t)
	if !stopAll.done() {
		t.Errorf("start fast answered before the stop of all watchers sent before it")
	}
	stopAll.await(t)
	if st := e.state("fast"); st != arbiter.Active {
		t.Errorf("after stop (all) then start fast: fast is %v, want active", st)
	}
}

// Circus's add (without start) is done when it answers, so a command on
// the new watcher sent right behind it finds it.
func TestAddThenCommandInOrder(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w]
cmd = WORKER sleep
`)
	e.accept("add", fmt.Sprintf(`{"name": "new", "cmd": "%s sleep", "start": false}`, worker))
	started := e.accept("start", `{"name": "new", "waiting": true}`)
	rep := started.await(t)
	if rep.Err == nil && len(e.pids("new")) != 1 {
		t.Errorf("start after add: %d workers, want 1", len(e.pids("new")))
	}

	// rm then add of the same name, pipelined: the add finds the name free.
	e.accept("rm", `{"name": "w"}`)
	readd := e.accept("add", fmt.Sprintf(`{"name": "w", "cmd": "%s sleep again", "start": true, "waiting": true}`, worker))
	readd.await(t)
	if w := e.a.Watcher("w"); w == nil || len(e.pids("w")) != 1 {
		t.Errorf("rm then add w: watcher %v, want it running again", w)
	}
}

// Properties of the wrong type are refused with errno 3 in Circus's words
// ("message invalid 'x' ..."), and nothing runs.
func TestMalformedProperties(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w]
cmd = WORKER sleep
`)
	pids := e.waitPool("w", 1)
	for _, tc := range []struct {
		name, cmd, props, reason string
	}{
		{"incr name number", "incr", `{"name": 1}`, "message invalid 'name' must be a string"},
		{"incr name null", "incr", `{"name": null}`, "message invalid 'name' is missing"},
		{"incr nb float", "incr", `{"name": "w", "nb": 1.5}`, "message invalid 'nb' must be an integer"},
		{"incr nb bool", "incr", `{"name": "w", "nb": true}`, "message invalid 'nb' must be an integer"},
		{"decr nb word", "decr", `{"name": "w", "nb": "two"}`, "message invalid 'nb' must be an integer"},
		{"incr waiting string", "incr", `{"name": "w", "waiting": "yes"}`, "message invalid 'waiting' must be a boolean"},
		{"incr waiting number", "incr", `{"name": "w", "waiting": 1}`, "message invalid 'waiting' must be a boolean"},
		{"stop waiting string", "stop", `{"name": "w", "waiting": "true"}`, "message invalid 'waiting' must be a boolean"},
		{"stop name list", "stop", `{"name": ["w"]}`, "message invalid 'name' must be a string"},
		{"stop match number", "stop", `{"name": "w", "match": 1}`, "message invalid 'match' must be a string"},
		{"get keys string", "get", `{"name": "w", "keys": "numprocesses"}`, "message invalid 'keys' must be a list of strings"},
		{"get keys numbers", "get", `{"name": "w", "keys": [1]}`, "message invalid 'keys' must be a list of strings"},
		{"get keys null element", "get", `{"name": "w", "keys": [null]}`, "message invalid 'keys' must be a list of strings"},
		{"get name number", "get", `{"name": 5, "keys": ["cmd"]}`, "message invalid 'name' must be a string"},
		{"status name number", "status", `{"name": 5}`, "message invalid 'name' must be a string"},
		{"list name bool", "list", `{"name": true}`, "message invalid 'name' must be a string"},
		{"reload graceful string", "reload", `{"name": "w", "graceful": "no"}`, "message invalid 'graceful' must be a boolean"},
		{"reload sequential number", "reload", `{"sequential": 1}`, "message invalid 'sequential' must be a boolean"},
		{"kill pid bool", "kill", `{"name": "w", "pid": true}`, "message invalid 'pid' must be an integer"},
		{"signal children string", "signal", `{"name": "w", "signum": "HUP", "children": "yes"}`, "message invalid 'children' must be a boolean"},
		{"stats process word", "stats", `{"name": "w", "process": "x"}`, "message invalid 'process' must be an integer"},
		{"stats extended string", "stats", `{"extended": "yes"}`, "message invalid 'extended' must be a boolean"},
		{"rm nostop string", "rm", `{"name": "w", "nostop": "yes"}`, "message invalid 'nostop' must be a boolean"},
		{"add start string", "add", `{"name": "x", "cmd": "c", "start": "yes"}`, "message invalid 'start' must be a boolean"},
		{"add cmd list", "add", `{"name": "x", "cmd": ["c"]}`, "message invalid 'cmd' must be a string"},
		{"quit waiting string", "quit", `{"waiting": "yes"}`, "message invalid 'waiting' must be a boolean"},
		{"globaloptions option number", "globaloptions", `{"option": 1}`, "message invalid 'option' must be a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			e.fails(tc.cmd, tc.props, control.MessageError, tc.reason)
		})
	}
	// None of it ran: the same single worker, the same size, still there.
	if got := e.waitPool("w", 1); !slices.Equal(got, pids) {
		t.Errorf("pids %v -> %v after refused requests", pids, got)
	}
	if got, want := e.ok("numprocesses", `{"name": "w"}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 1, "watcher_name": "w", "id": 1}`; got != want {
		t.Errorf("numprocesses after refused requests =\n%s\nwant\n%s", got, want)
	}
	select {
	case <-e.stopped:
		t.Errorf("a refused quit ended the arbiter")
	default:
	}
}

// Circus's exact words for refusals where ours differ (Circus 0.19
// source, cited per case).
func TestCircusWording(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w]
cmd = WORKER sleep
`)
	for _, tc := range []struct {
		name, cmd, props, reason string
	}{
		// commands/set.py validate: MessageError("'options' property
		// should be an object"); addwatcher.py says the same.
		{"set options list", "set", `{"name": "w", "options": []}`, "'options' property should be an object"},
		{"add options list", "add", `{"name": "x", "cmd": "c", "options": []}`, "'options' property should be an object"},
		// commands/util.py validate_option: "%r isn't a valid hook dict"
		// % val, a Python repr of the string.
		{"hooks string", "set", `{"name": "w", "options": {"hooks": "before_start:m.f"}}`, "'before_start:m.f' isn't a valid hook dict"},
		// "%r rlimit value isn't a valid int" % val.
		{"rlimit string", "set", `{"name": "w", "options": {"rlimit_nofile": "10"}}`, "'10' rlimit value isn't a valid int"},
		// "%r isn't a valid rlimit setting" % key, checked with the type
		// rules, before anything runs.
		{"rlimit unknown", "set", `{"name": "w", "options": {"rlimit_bogus": 10}}`, "'rlimit_bogus' isn't a valid rlimit setting"},
		// commands/sendsignal.py and kill.py: MessageError('signal
		// invalid').
		{"signal signum", "signal", `{"name": "w", "signum": "NOPE"}`, "signal invalid"},
		{"kill signum", "kill", `{"name": "w", "signum": "NOPE"}`, "signal invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.on(t)
			e.fails(tc.cmd, tc.props, control.MessageError, tc.reason)
		})
	}
}

// Commands sent without waiting leave the server's bound on requests in
// flight at once, yet wait here for their turn: the table bounds how many
// it holds and refuses the excess with a reason, and takes commands again
// once the queue has drained.
func TestQueueBound(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:stuck]
cmd = WORKER ignoreterm DIR/pids
graceful_timeout = 2
`)
	waitPids(t, filepath.Join(filepath.Dir(e.a.Config().File), "pids"))
	stop := e.accept("stop", `{"name": "stuck", "waiting": true}`)
	testproc.WaitFor(t, "stuck to be stopping", 10*time.Second, func() bool { return e.state("stuck") == arbiter.Stopping })

	const extra = 50
	refused := 0
	for range commands.DefaultMaxQueued - 1 + extra {
		rep := e.tab.Accept(request(t, "incr", `{"name": "stuck"}`))(context.Background())
		if rep.Err != nil {
			refused++
			checkErr(t, "incr past the bound", rep, control.CommandError,
				fmt.Sprintf("incr: %d commands already queued; retry when they are done", commands.DefaultMaxQueued))
		}
	}
	if refused != extra {
		t.Errorf("%d incr refused, want the %d past the bound of %d (the stop holds one place)", refused, extra, commands.DefaultMaxQueued)
	}
	stop.await(t)
	// The queue drains: every accepted incr ran, and a new one is taken.
	want := fmt.Sprintf(`{"status": "ok", "time": 1700000000.5, "numprocesses": %d, "id": 1}`, commands.DefaultMaxQueued+1)
	testproc.WaitFor(t, "the queue to drain", 30*time.Second, func() bool {
		rep := e.call("incr", `{"name": "stuck", "waiting": true}`)
		if rep.Err != nil {
			return false
		}
		if got := render(t, rep); got != want {
			t.Fatalf("incr after the drain =\n%s\nwant\n%s", got, want)
		}
		return true
	})
}
