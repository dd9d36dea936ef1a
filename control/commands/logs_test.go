package commands_test

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

type logsLine struct {
	Time    float64 `json:"time"`
	Watcher string  `json:"watcher"`
	Pid     int     `json:"pid"`
	Stream  string  `json:"stream"`
	Data    string  `json:"data"`
}

type logsReply struct {
	lines          []logsLine
	after, dropped map[string]uint64
	afterArbiter   uint64
	droppedArbiter uint64
	more           bool
}

func (e *env) logs(props string) logsReply {
	e.t.Helper()
	o := replyObject(e.t, e.call("logs", props))
	var r logsReply
	o.get(e.t, "lines", &r.lines)
	o.get(e.t, "after", &r.after)
	o.get(e.t, "dropped", &r.dropped)
	o.get(e.t, "more", &r.more)
	if slices.Contains(o.keys, "after_arbiter") {
		o.get(e.t, "after_arbiter", &r.afterArbiter)
		o.get(e.t, "dropped_arbiter", &r.droppedArbiter)
	}
	return r
}

// cursor is the properties that ask for what came after r.
func (r logsReply) cursor(extra string) string {
	var parts []string
	for n, s := range r.after {
		parts = append(parts, fmt.Sprintf("%q: %d", n, s))
	}
	return fmt.Sprintf(`{"after": {%s}, "after_arbiter": %d%s}`, strings.Join(parts, ", "), r.afterArbiter, extra)
}

const crashINI = `
[watcher:ticker]
cmd = WORKER tick 10ms
stdout_stream.class = QueueStream
stderr_stream.class = QueueStream

[watcher:crashy]
cmd = /bin/sh -c "echo starting; echo boom: cannot open db >&2; exit 1"
stdout_stream.class = QueueStream
stderr_stream.class = QueueStream
flapping.attempts = 3
flapping.window = 30
flapping.retry_in = 600
`

// TestLogs: every watcher's output and the arbiter's own lines, merged in
// time order; the last words of the workers of a watcher that stopped
// after flapping; a follower's cursor.
func TestLogs(t *testing.T) {
	t.Parallel()
	e := start(t, crashINI)
	testproc.WaitFor(t, "crashy to stop after flapping", 30*time.Second, func() bool {
		return e.state("crashy").String() == "stopped" && strings.Contains(e.log.String(), "flapping")
	})
	e.waitPool("ticker", 1)
	testproc.WaitFor(t, "ticker's output", 20*time.Second, func() bool { return e.logs(`{"names": ["ticker"]}`).after["ticker"] >= 20 })

	all := e.logs("")
	if len(all.lines) != 10 {
		t.Errorf("default: %d lines, want 10", len(all.lines))
	}
	if _, ok := all.after["crashy"]; !ok || all.afterArbiter == 0 {
		t.Errorf("cursor %v, arbiter's %d: want every watcher's and the arbiter's", all.after, all.afterArbiter)
	}

	// The arbiter's own lines are there, and tell the flapping.
	everything := e.logs(`{"lines": 0}`)
	seen := map[string]bool{}
	for i, l := range everything.lines {
		seen[l.Watcher+" "+l.Stream] = true
		if i > 0 && l.Time < everything.lines[i-1].Time {
			t.Errorf("line %d at %f after %f: not in time order", i, l.Time, everything.lines[i-1].Time)
		}
		if l.Watcher == "" && (l.Stream != "log" || l.Pid != os.Getpid()) {
			t.Errorf("arbiter's line %+v: want stream log, pid %d", l, os.Getpid())
		}
	}
	for _, want := range []string{"ticker stdout", "ticker stderr", "crashy stdout", "crashy stderr", " log"} {
		if !seen[want] {
			t.Errorf("no line of %q among %d", want, len(everything.lines))
		}
	}

	// The crashed workers' last words, although none is alive.
	crashy := e.logs(`{"names": ["crashy"], "lines": 100}`)
	booms, pids := 0, map[int]bool{}
	for _, l := range crashy.lines {
		if l.Watcher != "crashy" {
			t.Errorf("names [crashy] gave %+v", l)
		}
		if l.Stream == "stderr" && l.Data == "boom: cannot open db" {
			booms++
			pids[l.Pid] = true
		}
	}
	if booms < 3 || len(pids) != booms {
		t.Errorf("%d boom lines from %d workers, want one from each of 3 or more: %+v", booms, len(pids), crashy.lines)
	}
	if crashy.afterArbiter != 0 {
		t.Errorf("names without arbiter: true gave the arbiter's cursor %d", crashy.afterArbiter)
	}

	// A follower gets only what came after its cursor, nothing twice.
	next := e.logs(all.cursor(""))
	testproc.WaitFor(t, "more ticks", 20*time.Second, func() bool {
		r := e.logs(all.cursor(""))
		if len(r.lines) > 0 && r.after["ticker"] > all.after["ticker"] {
			next = r
			return true
		}
		return false
	})
	last := map[string]float64{}
	for _, l := range all.lines {
		last[l.Watcher] = max(last[l.Watcher], l.Time)
	}
	for _, l := range next.lines {
		if l.Time < last[l.Watcher] {
			t.Errorf("followed line %+v is older than the first reply's last of its watcher", l)
		}
	}
	if len(next.dropped) != 0 || next.droppedArbiter != 0 {
		t.Errorf("dropped %v, %d: a prompt follower misses nothing", next.dropped, next.droppedArbiter)
	}

	// since: only recent lines (crashy said nothing for a while).
	for _, l := range e.logs(`{"since": 0.000001}`).lines {
		if l.Watcher == "crashy" {
			t.Errorf("since 1µs gave crashy's line %+v", l)
		}
	}

	for _, c := range []struct{ props, reason string }{
		{`{"names": ["ticker", "nope"]}`, "program nope not found"},
		{`{"lines": -1}`, "lines: -1 is negative"},
		{`{"since": -5}`, "since: -5 is negative"},
		{`{"after": [1]}`, "message invalid 'after' must be an object of counts"},
		{`{"after": {"ticker": -1}}`, "message invalid 'after' must be an object of counts"},
		{`{"after_arbiter": -1}`, "after_arbiter: -1 is negative"},
		{`{"names": "ticker"}`, "message invalid 'names' must be a list of strings"},
	} {
		e.fails("logs", c.props, control.MessageError, c.reason)
	}
}

// TestLogsSlowFollower: a follower that stops reading while a worker
// floods holds the worker back not at all; when it reads again it is told
// how many lines it missed, and everything else arrives in order.
func TestLogsSlowFollower(t *testing.T) {
	t.Parallel()
	const size, total = 100, 2 << 20 // about 21,000 lines, 32 rings' worth
	e := start(t, fmt.Sprintf("[watcher:flood]\ncmd = WORKER flood %d %d\nstdout_stream.class = QueueStream\n", total, size))
	first := e.logs(`{"names": ["flood"], "lines": 1}`)
	lines := uint64(total / size)
	testproc.WaitFor(t, "the flood written", 30*time.Second, func() bool {
		return e.logs(`{"names": ["flood"], "lines": 1}`).after["flood"] >= lines
	})
	cur := first
	var read, dropped uint64
	prev := ""
	for {
		r := e.logs(cur.cursor(`, "names": ["flood"]`))
		read += uint64(len(r.lines))
		dropped += r.dropped["flood"]
		for _, l := range r.lines {
			if prev != "" && l.Data[:9] <= prev {
				t.Fatalf("line %.9s after %s", l.Data, prev)
			}
			prev = l.Data[:9]
		}
		cur = r
		if !r.more {
			break
		}
	}
	written := cur.after["flood"] - first.after["flood"]
	if read+dropped != written || dropped == 0 || read == 0 {
		t.Errorf("%d lines read + %d dropped, want %d written in all, some of each", read, dropped, written)
	}
	t.Logf("%d lines written while the follower slept: %d dropped for it, %d read", written, dropped, read)
}
