package commands_test

import (
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

type tailLine struct {
	Seq    int64   `json:"seq"`
	Pid    int     `json:"pid"`
	Stream string  `json:"stream"`
	Time   float64 `json:"time"`
	Data   string  `json:"data"`
}

func (e *env) tail(props string) ([]tailLine, int64) {
	e.t.Helper()
	o := replyObject(e.t, e.call("tail", props))
	if fmt.Sprint(o.keys) != "[status time lines last id]" {
		e.t.Fatalf("tail reply keys %v", o.keys)
	}
	var lines []tailLine
	var last int64
	o.get(e.t, "lines", &lines)
	o.get(e.t, "last", &last)
	return lines, last
}

func TestTail(t *testing.T) {
	t.Parallel()
	e := start(t, "[watcher:ticker]\ncmd = WORKER tick 10ms\nstdout_stream.class = QueueStream\n")
	pid := e.waitPool("ticker", 1)[0]
	testproc.WaitFor(t, "20 lines kept", 20*time.Second, func() bool { _, last := e.tail(`{"name": "ticker"}`); return last >= 20 })

	lines, last := e.tail(`{"name": "ticker", "lines": 4, "stream": "stdout"}`)
	if len(lines) != 4 {
		t.Fatalf("lines = 4 gave %d lines", len(lines))
	}
	re := regexp.MustCompile(`^tick \d+$`)
	for i, l := range lines {
		if l.Pid != pid || l.Stream != "stdout" || !re.MatchString(l.Data) || l.Time < 1.7e9 || l.Seq > last {
			t.Errorf("line %d: %+v (pid %d, last %d)", i, l, pid, last)
		}
		if i > 0 && l.Seq <= lines[i-1].Seq {
			t.Errorf("seq %d after %d", l.Seq, lines[i-1].Seq)
		}
	}
	if def, _ := e.tail(`{"name": "ticker"}`); len(def) != 10 {
		t.Errorf("default: %d lines, want 10", len(def))
	}
	since, _ := e.tail(fmt.Sprintf(`{"name": "ticker", "since": %d}`, last))
	for _, l := range since {
		if l.Seq <= last {
			t.Errorf("since %d gave line %d", last, l.Seq)
		}
	}
	if other, _ := e.tail(fmt.Sprintf(`{"name": "ticker", "pid": %d}`, pid+100000)); len(other) != 0 {
		t.Errorf("another pid's lines: %v", other)
	}

	for _, c := range []struct{ props, reason string }{
		{`{"name": "nope"}`, "program nope not found"},
		{`{"name": "ticker", "stream": "stdin"}`, `stream: "stdin" is not stdout or stderr`},
		{`{"name": "ticker", "lines": -1}`, "lines: -1 is negative"},
		{`{"name": "ticker", "since": -5}`, "since: -5 is negative"},
	} {
		e.fails("tail", c.props, control.MessageError, c.reason)
	}
}
