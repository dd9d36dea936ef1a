package plugins

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Numbers keep Python's int and float apart, as Circus's "%s" does.
func TestPyNum(t *testing.T) {
	t.Parallel()
	nums := func(ss ...string) []pyNum {
		var out []pyNum
		for _, s := range ss {
			n, ok := number(json.RawMessage(s))
			if !ok {
				t.Fatalf("number(%s) not a number", s)
			}
			out = append(out, n)
		}
		return out
	}
	tests := []struct {
		in       []pyNum
		max, sum string
	}{
		{nums("0.0", "0.0"), "0.0", "0.0"},
		{nums("1.5", "12.25"), "12.25", "13.75"},
		{nums("3", "4"), "4", "7"},
		{nums("3", "0.5"), "3", "3.5"},
		{nums("1e-05"), "1e-05", "1e-05"},
	}
	for _, tt := range tests {
		if got := maxOf(tt.in).String(); got != tt.max {
			t.Errorf("maxOf(%v) = %s, want %s", tt.in, got, tt.max)
		}
		if got := sumOf(tt.in).String(); got != tt.sum {
			t.Errorf("sumOf(%v) = %s, want %s", tt.in, got, tt.sum)
		}
	}
	for _, s := range []string{`"N/A"`, `null`, `true`, ``, `{}`, `Infinity`} {
		if n, ok := number(json.RawMessage(s)); ok {
			t.Errorf("number(%s) = %v, want not a number", s, n)
		}
	}
}

func TestRedisValue(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"1.50": "1.5", "0.25": "0.25", "123": "123", "master": "master",
		"1.2.3": "1.2.3", "-4": "-4", "1e3": "1e3", "3.0": "3.0"} {
		if got := redisValue(in); got != want {
			t.Errorf("redisValue(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWatchDogParse(t *testing.T) {
	t.Parallel()
	parse := func(expr, msg string) (string, bool) {
		re, err := config.MatchRegexp(expr)
		if err != nil {
			t.Fatal(err)
		}
		p := &watchDog{msg: re, pidGroup: re.SubexpIndex("pid")}
		return p.parse([]byte(msg))
	}
	const def = `^(?P<pid>.*);(?P<timestamp>.*)$`
	tests := []struct {
		expr, msg, pid string
		ok             bool
	}{
		{def, "1234;1700000000.5", "1234", true},
		{def, "1234;1700000000.5\n", "1234", true}, // Python's $ matches before a final newline
		{def, "1234", "", false},
		{def, "\xff;1", "", false},
		{`(?P<pid>\d+) alive`, "77 alive and well", "77", true}, // re.match: anchored at the start only
		{`(?P<pid>\d+) alive`, "x 77 alive", "", false},
	}
	for _, tt := range tests {
		pid, ok := parse(tt.expr, tt.msg)
		if pid != tt.pid || ok != tt.ok {
			t.Errorf("parse(%q, %q) = %q, %v, want %q, %v", tt.expr, tt.msg, pid, ok, tt.pid, tt.ok)
		}
	}
}

// judge follows Circus's _process_index: a bound breached in more than
// max_count samples in a row restarts, and any sample within it starts the
// count again.
func TestResourceWatcherJudge(t *testing.T) {
	t.Parallel()
	spec := &config.ResourceWatcher{Watcher: "web", MaxCPU: config.Bound{Set: true, Value: 90},
		MinCPU: config.Bound{Set: true, Value: 1}, MaxMem: config.Bound{Set: true, Value: 100 << 20, Bytes: true},
		MinMem: config.Bound{Set: true, Value: 1 << 20, Bytes: true}, HealthThreshold: 75, MaxCount: 2}
	st := &statsdClient{conn: discardConn(t), prefix: "p", rate: 1}
	ok := sample{maxCPU: 50, minCPU: 5, maxMem: 10, minMem: 5, maxMemAbs: 50 << 20, minMemAbs: 2 << 20}
	tests := []struct {
		name string
		bad  sample
	}{
		{"over cpu", sample{maxCPU: 95, minCPU: 5, maxMemAbs: 50 << 20, minMemAbs: 2 << 20}},
		{"under cpu (at the bound)", sample{maxCPU: 1, minCPU: 1, maxMemAbs: 50 << 20, minMemAbs: 2 << 20}},
		{"over memory", sample{maxCPU: 10, minCPU: 5, maxMemAbs: 200 << 20, minMemAbs: 2 << 20}},
		{"under memory", sample{maxCPU: 10, minCPU: 5, maxMemAbs: 50 << 20, minMemAbs: 1 << 19}},
		{"health", sample{maxCPU: 80, minCPU: 5, maxMem: 80, maxMemAbs: 50 << 20, minMemAbs: 2 << 20}},
	}
	for _, tt := range tests {
		p := &resourceWatcher{spec: spec, st: st, counts: map[int]*breaches{}}
		var got []bool
		for _, s := range []sample{tt.bad, tt.bad, ok, tt.bad, tt.bad, tt.bad, tt.bad} {
			got = append(got, p.judge(parentIndex, s))
		}
		want := []bool{false, false, false, false, false, true, false}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: restarts (-want +got):\n%s", tt.name, diff)
		}
	}
}

// discardConn is a UDP socket to a port nobody reads.
func discardConn(t *testing.T) *net.UDPConn {
	t.Helper()
	st, err := newStatsd(config.Statsd{Host: "127.0.0.1", Port: 9, SampleRate: 1, ApplicationName: "x"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.close)
	return st.conn
}

// With sample_rate below 1, counters are sent with that probability and
// tagged as Circus tags them; gauges are all sent, tagged the same.
func TestStatsdSampleRate(t *testing.T) {
	t.Parallel()
	sink := testproc.NewUDPSink(t)
	st, err := newStatsd(config.Statsd{Host: "127.0.0.1", Port: sink.Port, SampleRate: 0.25, ApplicationName: "app"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.close()
	// In rounds, each ended by a gauge that is waited for, so that no
	// datagram is lost to a full socket buffer.
	const rounds, per = 20, 50
	for r := range rounds {
		for range per {
			st.increment("web.spawn")
		}
		st.gauge("mark", "1")
		testproc.WaitFor(t, fmt.Sprintf("round %d's gauge", r), 10*time.Second, func() bool { return len(sink.Matching("mark:")) == r+1 })
	}
	counters := 0
	for _, g := range sink.Packets() {
		switch {
		case g == "circus.app.watcher.web.spawn:1|c|@0.25":
			counters++
		case g == "circus.app.watcher.mark:1|g|@0.25":
		default:
			t.Errorf("packet %q, want Circus's format with |@0.25", g)
		}
	}
	// 1000 counters at 0.25: 250 expected, sd 13.7; 6 sd either side.
	if counters < 168 || counters > 332 {
		t.Errorf("%d of %d counters sent at sample_rate 0.25, want about 250", counters, rounds*per)
	}
	t.Logf("%d of %d counters sent at sample_rate 0.25", counters, rounds*per)
}

// Bad replies never panic a plugin: members and number take anything.
func TestMembersOfGarbage(t *testing.T) {
	t.Parallel()
	for _, s := range []string{``, `[]`, `{"a": }`, `{"a": 1`, `"x"`, `{1: 2}`, `null`} {
		if got := members(json.RawMessage(s)); got != nil {
			t.Errorf("members(%s) = %v, want nil", s, got)
		}
	}
	want := []field{{"b", json.RawMessage(`1`)}, {"a", json.RawMessage(`{"x": [1, 2]}`)}}
	if got := members(json.RawMessage(`{"b": 1, "a": {"x": [1, 2]}}`)); !cmp.Equal(got, want, cmp.AllowUnexported(field{})) {
		t.Errorf("members kept order %v, want %v", got, want)
	}
	// What cannot be read counts as Circus counts it: 100 %, 0 bytes.
	got := measure([][]field{members(json.RawMessage(`{"cpu": "N/A", "mem": null, "mem_info1": "N/A"}`))})
	if w := (sample{100, 100, 100, 100, 0, 0}); got != w {
		t.Errorf("measure of N/A = %+v, want %+v", got, w)
	}
}
