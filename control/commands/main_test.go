package commands_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// worker is the path of the testworker binary, built once: an in-process
// arbiter reaps every child of the test binary, so nothing may be built or
// exec'd once a test runs.
var worker string

func TestMain(m *testing.M) { os.Exit(arbtest.Main(m, &worker)) }

// env is an arbiter under test with its command table, seen from one test
// (or subtest: see on), whose t its helpers fail.
type env struct {
	*arb
	t *testing.T
}

// arb is the arbiter and table an env drives.
type arb struct {
	owner  *testing.T // the test that started it
	a      *arbiter.Arbiter
	tab    *commands.Table
	events *arbtest.Events
	log    *arbtest.LogBuf
	// journal keeps the arbiter's log lines for the logs command.
	journal *logs.Journal
	cancel  context.CancelFunc
	// stopped is closed when Run has returned (the table's Options.Stopped).
	stopped chan struct{}
	runErr  error
	once    sync.Once
}

// on is e for the subtest t: its helpers must fail t, from t's goroutine.
func (e *env) on(t *testing.T) *env { return &env{arb: e.arb, t: t} }

// start runs an arbiter on ini with a Table whose Quit ends Run, until the
// test ends; then the arbiter stops first and the table is closed after it.
func start(t *testing.T, ini string) *env {
	t.Helper()
	cfg := arbtest.LoadINI(t, worker, ini)
	e := &env{arb: &arb{owner: t, events: &arbtest.Events{}, log: &arbtest.LogBuf{T: t}, journal: logs.NewJournal(), stopped: make(chan struct{})}, t: t}
	logger := slog.New(slog.NewMultiHandler(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewTextHandler(e.journal, nil)))
	a, err := arbiter.New(cfg, arbiter.Options{Logger: logger, Publisher: e.events})
	if err != nil {
		t.Fatalf("arbiter.New: %v", err)
	}
	e.a = a
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	tab, err := commands.New(a, commands.Options{Logger: logger, Quit: cancel, Stopped: e.stopped, Journal: e.journal})
	if err != nil {
		cancel()
		t.Fatalf("commands.New: %v", err)
	}
	e.tab = tab
	go func() {
		e.runErr = a.Run(ctx)
		close(e.stopped)
	}()
	t.Cleanup(e.shutdown)
	select {
	case <-a.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start within 30s")
	}
	return e
}

// shutdown stops the arbiter, waits for Run, then closes the table.
func (r *arb) shutdown() {
	r.once.Do(func() {
		r.cancel()
		select {
		case <-r.stopped:
			if r.runErr != nil {
				r.owner.Errorf("Run: %v", r.runErr)
			}
		case <-time.After(60 * time.Second):
			r.owner.Error("Run did not return within 60s of cancel")
		}
		r.tab.Close()
	})
}

// request decodes a request frame as the control server would.
func request(t testing.TB, cmd, props string) control.Request {
	t.Helper()
	if props == "" {
		props = "{}"
	}
	frame := fmt.Sprintf(`{"id": 1, "command": %q, "properties": %s}`, cmd, props)
	req, err := control.DecodeRequest([]byte(frame))
	if err != nil {
		t.Fatalf("DecodeRequest(%s) = %v", frame, err)
	}
	return req
}

// call runs one command to its reply, with a deadline well beyond any
// graceful_timeout used here.
func (e *env) call(cmd, props string) control.Reply {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.tab.Handle(ctx, request(e.t, cmd, props))
}

// replyTime is the time every reply is rendered with, so that frames can be
// compared whole.
var replyTime = time.Unix(1700000000, 500000000)

// render renders rep as the server sends it, with id 1.
func render(t testing.TB, rep control.Reply) string {
	t.Helper()
	b, err := rep.Render(json.RawMessage("1"), replyTime)
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	return string(b)
}

// ok runs cmd and fails the test unless the reply is a success; it returns
// the rendered frame.
func (e *env) ok(cmd, props string) string {
	e.t.Helper()
	rep := e.call(cmd, props)
	if rep.Err != nil {
		e.t.Fatalf("%s %s = errno %d %q, want success", cmd, props, rep.Err.Errno, rep.Err.Reason)
	}
	return render(e.t, rep)
}

// fails runs cmd and checks the error reply's errno and reason.
func (e *env) fails(cmd, props string, errno control.Errno, reason string) {
	e.t.Helper()
	rep := e.call(cmd, props)
	checkErr(e.t, cmd+" "+props, rep, errno, reason)
}

// checkErr checks an error reply's errno and reason and its rendering.
func checkErr(t testing.TB, what string, rep control.Reply, errno control.Errno, reason string) {
	t.Helper()
	if rep.Err == nil {
		t.Errorf("%s = %s, want errno %d %q", what, render(t, rep), errno, reason)
		return
	}
	if rep.Err.Errno != errno || rep.Err.Reason != reason {
		t.Errorf("%s = errno %d %q, want errno %d %q", what, rep.Err.Errno, rep.Err.Reason, errno, reason)
		return
	}
	reasonJSON, _ := json.Marshal(reason)
	want := fmt.Sprintf(`{"status": "error", "reason": %s, "tb": null, "time": 1700000000.5, "errno": %d, "id": 1}`, reasonJSON, errno)
	if got := render(t, rep); got != want {
		t.Errorf("%s renders\n%s\nwant\n%s", what, got, want)
	}
}

// object is a decoded JSON object that remembers its key order and keeps
// numbers as written, so that 30 and 30.0 stay apart.
type object struct {
	keys []string
	m    map[string]json.RawMessage
}

func decodeObject(t testing.TB, raw []byte) object {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	o := object{m: map[string]json.RawMessage{}}
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s is not a JSON object", raw)
	}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		k := tok.(string)
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		o.keys = append(o.keys, k)
		o.m[k] = v
	}
	return o
}

// get decodes member k into v, failing the test when it is absent.
func (o object) get(t testing.TB, k string, v any) {
	t.Helper()
	raw, ok := o.m[k]
	if !ok {
		t.Fatalf("no %q among %v", k, o.keys)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("%q = %s: %v", k, raw, err)
	}
}

// sub decodes member k as an object.
func (o object) sub(t testing.TB, k string) object {
	t.Helper()
	raw, ok := o.m[k]
	if !ok {
		t.Fatalf("no %q among %v", k, o.keys)
	}
	return decodeObject(t, raw)
}

// replyObject renders rep and decodes it.
func replyObject(t testing.TB, rep control.Reply) object {
	t.Helper()
	return decodeObject(t, []byte(render(t, rep)))
}

// pids returns the live (not stopping) workers of a watcher, sorted.
func (e *env) pids(name string) []int {
	e.t.Helper()
	w := e.a.Watcher(name)
	if w == nil {
		e.t.Fatalf("no watcher %q", name)
	}
	_, procs, err := w.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	var pids []int
	for _, p := range procs {
		if !p.Stopping {
			pids = append(pids, p.Pid)
		}
	}
	slices.Sort(pids)
	return pids
}

// state returns a watcher's state.
func (e *env) state(name string) arbiter.State {
	e.t.Helper()
	w := e.a.Watcher(name)
	if w == nil {
		e.t.Fatalf("no watcher %q", name)
	}
	st, _, err := w.Info(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return st
}

// waitPool waits until a watcher has n live workers and none on its way out.
func (e *env) waitPool(name string, n int) []int {
	e.t.Helper()
	var pids []int
	testproc.WaitFor(e.t, fmt.Sprintf("%s to have %d workers", name, n), 20*time.Second, func() bool {
		_, procs, err := e.a.Watcher(name).Info(context.Background())
		if err != nil {
			return false
		}
		pids = pids[:0]
		for _, p := range procs {
			if p.Stopping {
				return false
			}
			pids = append(pids, p.Pid)
		}
		return len(pids) == n
	})
	slices.Sort(pids)
	return pids
}

// waitPids waits for a worker to write "PID OTHERPID" to path (testworker's
// ignoreterm and childoutside roles) and returns both.
func waitPids(t *testing.T, path string) (pid, other int) {
	t.Helper()
	testproc.WaitFor(t, "the worker's pids in "+path, 10*time.Second, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		_, err = fmt.Sscanf(string(b), "%d %d", &pid, &other)
		return err == nil
	})
	return pid, other
}

// intList is a JSON list of integers, such as restart's "started".
var intList = regexp.MustCompile(`\[[0-9, ]+\]`)

// sortLists sorts the members of every list of integers in a frame. The
// arbiter lists pids in start order, which is numeric order until pids
// wrap around (pid_max may be 32768); Circus sorts them numerically. The
// tests compare the sets.
func sortLists(frame string) string {
	return intList.ReplaceAllStringFunc(frame, func(l string) string {
		var pids []int
		for _, f := range strings.Split(strings.Trim(l, "[]"), ", ") {
			n, _ := strconv.Atoi(f)
			pids = append(pids, n)
		}
		slices.Sort(pids)
		return ints(pids)
	})
}

// ints renders pids as a Python list.
func ints(pids []int) string {
	s := make([]string, len(pids))
	for i, p := range pids {
		s[i] = fmt.Sprint(p)
	}
	return "[" + strings.Join(s, ", ") + "]"
}
