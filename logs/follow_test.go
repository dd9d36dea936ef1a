package logs

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// pageString renders a Page as seq:pid:data, then its cursor and losses.
func pageString(p Page) string {
	var parts []string
	for _, l := range p.Lines {
		parts = append(parts, fmt.Sprintf("%d:%d:%s", l.Seq, l.Pid, l.Data))
	}
	return fmt.Sprintf("[%s] next=%d dropped=%d more=%v", strings.Join(parts, " "), p.Next, p.Dropped, p.More)
}

func TestFollow(t *testing.T) {
	o, _, _ := newTestOutput(t)
	a := capture(t, o, 100, Stdout)
	b := capture(t, o, 200, Stderr)
	a.WriteString("a1\na2\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 2 })
	mid := time.Now()
	b.WriteString("b1\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 3 })
	a.WriteString("a3\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 4 })
	b.Close() // an exited worker's lines are followed too
	waitFor(t, func() bool { return len(o.Follow(0, time.Time{}, 0).Lines) == 4 })

	for _, tt := range []struct {
		name  string
		since uint64
		from  time.Time
		limit int
		want  string
	}{
		{"all", 0, time.Time{}, 0, "[1:100:a1 2:100:a2 3:200:b1 4:100:a3] next=4 dropped=0 more=false"},
		{"after 2", 2, time.Time{}, 0, "[3:200:b1 4:100:a3] next=4 dropped=0 more=false"},
		{"nothing new", 4, time.Time{}, 0, "[] next=4 dropped=0 more=false"},
		{"a page of 3", 0, time.Time{}, 3, "[1:100:a1 2:100:a2 3:200:b1] next=3 dropped=0 more=true"},
		{"from a time", 0, mid, 0, "[3:200:b1 4:100:a3] next=4 dropped=0 more=false"},
		{"from a time, paged", 0, mid, 1, "[3:200:b1] next=3 dropped=0 more=true"},
		{"an earlier arbiter's cursor", 99, time.Time{}, 2, "[1:100:a1 2:100:a2] next=2 dropped=0 more=true"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if g := pageString(o.Follow(tt.since, tt.from, tt.limit)); g != tt.want {
				t.Errorf("Follow(%d, %v, %d) = %s, want %s", tt.since, tt.from, tt.limit, g, tt.want)
			}
		})
	}
	waitDone(t, o, a)
}

// TestFollowCountsWhatASlowReaderMissed: a reader that stops reading
// holds nothing back; when it comes back, the lines the ring no longer
// holds are counted, and the rest follow without a gap.
func TestFollowCountsWhatASlowReaderMissed(t *testing.T) {
	o, _, _ := newTestOutput(t)
	w := capture(t, o, 1, Stdout)
	w.WriteString("first\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 1 })
	p := o.Follow(0, time.Time{}, 0)
	if len(p.Lines) != 1 || p.Dropped != 0 {
		t.Fatalf("first page: %s", pageString(p))
	}
	// The reader stops; the worker writes several rings' worth.
	const n = 5000
	for i := range n {
		fmt.Fprintf(w, "%05d %s\n", i, strings.Repeat("x", 94))
	}
	waitDone(t, o, w)
	var got []Line
	var dropped uint64
	since := p.Next
	for {
		p = o.Follow(since, time.Time{}, 100)
		got = append(got, p.Lines...)
		dropped += p.Dropped
		since = p.Next
		if !p.More {
			break
		}
	}
	if uint64(len(got))+dropped != n {
		t.Errorf("%d lines read + %d dropped, want %d in all", len(got), dropped, n)
	}
	if dropped < n/2 || len(got) == 0 {
		t.Errorf("%d dropped, %d read: want most dropped, the last ones read", dropped, len(got))
	}
	for i, l := range got {
		if want := fmt.Sprintf("%05d ", int(l.Seq)-2); !strings.HasPrefix(string(l.Data), want) {
			t.Fatalf("line %d: seq %d holds %.10q", i, l.Seq, l.Data)
		}
		if i > 0 && l.Seq != got[i-1].Seq+1 {
			t.Fatalf("gap after the first page: seq %d after %d", l.Seq, got[i-1].Seq)
		}
	}
}

func TestJournal(t *testing.T) {
	j := NewJournal()
	fmt.Fprintf(j, "level=INFO msg=spawned pid=1\n")
	fmt.Fprintf(j, "level=WARN msg=\"no newline\"")
	p := j.Follow(0, time.Time{}, 0)
	if g, want := pageString(p), fmt.Sprintf(`[1:%[1]d:level=INFO msg=spawned pid=1 2:%[1]d:level=WARN msg="no newline"] next=2 dropped=0 more=false`, j.pid); g != want {
		t.Errorf("Follow = %s, want %s", g, want)
	}
	if lines, _ := j.Tail(Query{Lines: 1}); len(lines) != 1 || lines[0].Stream != Stderr {
		t.Errorf("Tail(1) = %+v, want the last line, on stderr", lines)
	}
}
