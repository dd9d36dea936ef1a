package logs

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/config"
)

func TestMain(m *testing.M) {
	// The test binary also plays the processes of TestDetachAcrossExec.
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	goleak.VerifyTestMain(m)
}

// memSink records what it is given, as written.
type memSink struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	writes int
}

func (s *memSink) write(lines []byte, pid int, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	s.buf.Write(lines)
	return nil
}
func (s *memSink) reopen() error { return nil }
func (s *memSink) close() error  { return nil }
func (s *memSink) abort()        {}
func (s *memSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func memDest() (*Dest, *memSink) {
	s := &memSink{}
	return &Dest{spec: config.Stream{Class: "QueueStream"}, sink: s, turn: make(chan struct{}, 1)}, s
}

// capture starts reading a pipe as worker pid's stream s and returns the
// end to write.
func capture(t *testing.T, o *Output, pid int, s Stream) *os.File {
	t.Helper()
	p, err := o.Pipes(s == Stdout, s == Stderr)
	if err != nil {
		t.Fatal(err)
	}
	// Start closes the writer it made; the test writes through a copy.
	w, err := dupFile(p.Writer(s))
	if err != nil {
		t.Fatal(err)
	}
	p.Start(pid)
	return w
}

func dupFile(f *os.File) (*os.File, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	var derr error
	rc.Control(func(fd uintptr) {
		var nfd int
		nfd, derr = dupCloexec(int(fd))
		nf = os.NewFile(uintptr(nfd), f.Name())
	})
	return nf, derr
}

func newTestOutput(t *testing.T) (*Output, *memSink, *memSink) {
	t.Helper()
	out, so := memDest()
	errd, se := memDest()
	o := NewOutput(out, errd, nil)
	t.Cleanup(func() { o.Close(5 * time.Second) })
	return o, so, se
}

// waitDone closes the writer and waits for its reader to finish.
func waitDone(t *testing.T, o *Output, w *os.File) {
	t.Helper()
	w.Close()
	if !waitTimeout(&o.wg, 10*time.Second) {
		t.Fatal("reader did not finish")
	}
}

func TestWholeLines(t *testing.T) {
	o, so, _ := newTestOutput(t)
	w := capture(t, o, 42, Stdout)
	for _, part := range []string{"hel", "lo\nwor", "ld\n", "no newline at the end"} {
		if _, err := w.WriteString(part); err != nil {
			t.Fatal(err)
		}
		// Give the reader each piece alone, as separate pipe reads.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) && pipeBuffered(t, w) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
	waitDone(t, o, w)
	if got, want := so.String(), "hello\nworld\nno newline at the end\n"; got != want {
		t.Errorf("written %q, want %q", got, want)
	}
	if so.writes != 3 {
		t.Errorf("%d writes, want 3 (one per completed read of whole lines)", so.writes)
	}
}

func TestLongLinesAndBinary(t *testing.T) {
	o, so, _ := newTestOutput(t)
	w := capture(t, o, 7, Stdout)
	mib := strings.Repeat("x", 1<<20)
	huge := strings.Repeat("y", MaxLine+1000)
	var bin []byte
	for i := range 256 {
		if i != '\n' {
			bin = append(bin, byte(i))
		}
	}
	want := mib + "\n" + string(bin) + "\n" + huge[:MaxLine] + "\n" + huge[MaxLine:] + "\n"
	go func() {
		w.WriteString(mib + "\n")
		w.Write(append(bin, '\n'))
		w.WriteString(huge + "\n")
		w.Close()
	}()
	if !waitTimeout(&o.wg, 20*time.Second) {
		t.Fatal("reader did not finish")
	}
	if got := so.String(); got != want {
		t.Errorf("written %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestWorkersDoNotInterleave(t *testing.T) {
	o, so, _ := newTestOutput(t)
	var writers []*os.File
	for pid := 1; pid <= 4; pid++ {
		writers = append(writers, capture(t, o, pid, Stdout))
	}
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			defer w.Close()
			line := strings.Repeat(string(rune('a'+i)), 300)
			for range 2000 {
				// Each line in three writes, so that reads cut lines.
				w.WriteString(line[:100])
				w.WriteString(line[100:])
				w.WriteString("\n")
			}
		})
	}
	wg.Wait()
	if !waitTimeout(&o.wg, 10*time.Second) {
		t.Fatal("readers did not finish")
	}
	lines := strings.Split(strings.TrimSuffix(so.String(), "\n"), "\n")
	if len(lines) != 8000 {
		t.Fatalf("%d lines, want 8000", len(lines))
	}
	for i, l := range lines {
		if len(l) != 300 || strings.Count(l, l[:1]) != 300 {
			t.Fatalf("line %d is mixed: %.40q...", i, l)
		}
	}
}

// TestUseKeepsEveryLine swaps the destination while a worker writes: every
// line lands in exactly one of them, in order.
func TestUseKeepsEveryLine(t *testing.T) {
	o, first, _ := newTestOutput(t)
	sinks := []*memSink{first}
	w := capture(t, o, 9, Stdout)
	const n = 50000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			fmt.Fprintf(w, "line %d\n", i)
		}
		w.Close()
	}()
	for range 20 {
		d, s := memDest()
		o.Use(Stdout, d)
		sinks = append(sinks, s)
		time.Sleep(time.Millisecond)
	}
	<-done
	if !waitTimeout(&o.wg, 10*time.Second) {
		t.Fatal("reader did not finish")
	}
	var all strings.Builder
	for _, s := range sinks {
		all.WriteString(s.String())
	}
	lines := strings.Split(strings.TrimSuffix(all.String(), "\n"), "\n")
	if len(lines) != n {
		t.Fatalf("%d lines over %d destinations, want %d", len(lines), len(sinks), n)
	}
	for i, l := range lines {
		if l != fmt.Sprintf("line %d", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
}

func TestTail(t *testing.T) {
	o, _, _ := newTestOutput(t)
	a := capture(t, o, 100, Stdout)
	b := capture(t, o, 200, Stderr)
	a.WriteString("a1\na2\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 2 })
	b.WriteString("b1\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 3 })
	a.WriteString("a3\n")
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == 4 })

	got := func(q Query) string {
		lines, _ := o.Tail(q)
		var parts []string
		for _, l := range lines {
			parts = append(parts, fmt.Sprintf("%d:%d:%s:%s", l.Seq, l.Pid, l.Stream, l.Data))
		}
		return strings.Join(parts, " ")
	}
	stderr := Stderr
	for _, tt := range []struct {
		q    Query
		want string
	}{
		{Query{}, "1:100:stdout:a1 2:100:stdout:a2 3:200:stderr:b1 4:100:stdout:a3"},
		{Query{Lines: 2}, "3:200:stderr:b1 4:100:stdout:a3"},
		{Query{Since: 2}, "3:200:stderr:b1 4:100:stdout:a3"},
		{Query{Pid: 100, Lines: 2}, "2:100:stdout:a2 4:100:stdout:a3"},
		{Query{Stream: &stderr}, "3:200:stderr:b1"},
		{Query{Since: 4}, ""},
	} {
		if g := got(tt.q); g != tt.want {
			t.Errorf("Tail(%+v) = %q, want %q", tt.q, g, tt.want)
		}
	}
	b.Close()
	waitDone(t, o, a)
	if g := got(Query{Pid: 100}); g != "1:100:stdout:a1 2:100:stdout:a2 4:100:stdout:a3" {
		t.Errorf("after exit: %q; the output of an exited worker must be kept", g)
	}
}

func TestTailKeepsRecentAndFewExited(t *testing.T) {
	o, _, _ := newTestOutput(t)
	w := capture(t, o, 1, Stdout)
	for i := range 10000 {
		fmt.Fprintf(w, "%05d %s\n", i, strings.Repeat("z", 94))
	}
	waitDone(t, o, w)
	lines, last := o.Tail(Query{})
	if last != 10000 {
		t.Fatalf("last = %d, want 10000", last)
	}
	kept := 0
	for _, l := range lines {
		kept += len(l.Data) + 1
	}
	if kept > RingBytes || kept < RingBytes/2 {
		t.Errorf("kept %d bytes, want about %d", kept, RingBytes)
	}
	if l := lines[len(lines)-1]; l.Seq != 10000 || !strings.HasPrefix(string(l.Data), "09999 ") {
		t.Errorf("last kept line %d %q", l.Seq, l.Data)
	}
	for i, l := range lines {
		if want := fmt.Sprintf("%05d ", int(l.Seq)-1); !strings.HasPrefix(string(l.Data), want) {
			t.Fatalf("line %d: seq %d holds %.10q", i, l.Seq, l.Data)
		}
	}

	for pid := 2; pid <= 2+keepExited; pid++ {
		w := capture(t, o, pid, Stdout)
		fmt.Fprintf(w, "bye from %d\n", pid)
		waitDone(t, o, w)
	}
	if lines, _ := o.Tail(Query{Pid: 1}); len(lines) != 0 {
		t.Errorf("worker 1 still has %d lines kept after %d more exited", len(lines), keepExited+1)
	}
	if lines, _ := o.Tail(Query{Pid: 2 + keepExited}); len(lines) != 1 {
		t.Errorf("the last exited worker has %d lines kept, want 1", len(lines))
	}
}

// TestCloseStopsReadingAbandonedPipes: a pipe still held open (by a daemon
// a worker left, say) does not keep Close waiting for ever.
func TestCloseStopsReadingAbandonedPipes(t *testing.T) {
	out, _ := memDest()
	errd, _ := memDest()
	o := NewOutput(out, errd, nil)
	w := capture(t, o, 5, Stdout)
	defer w.Close()
	w.WriteString("still here\n")
	start := time.Now()
	o.Close(50 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if lines, _ := o.Tail(Query{}); len(lines) != 1 {
		t.Errorf("%d lines kept, want 1", len(lines))
	}
}

func TestConsolePrefixes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	con := Consoles{Stdout: NewConsole(&stdout), Stderr: NewConsole(&stderr)}
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.Local)
	for _, tt := range []struct {
		spec config.Stream
		s    Stream
		want string
		on   *bytes.Buffer
	}{
		{config.Stream{}, Stdout, "web[42]: hello\nweb[42]: world\n", &stdout},
		{config.Stream{}, Stderr, "web[42]: hello\nweb[42]: world\n", &stderr},
		{config.Stream{Class: "StdoutStream"}, Stderr, "web[42]: hello\nweb[42]: world\n", &stdout},
		{config.Stream{Class: "StdoutStream", TimeFormat: "%H:%M:%S"}, Stdout, "10:00:00 web[42]: hello\n10:00:00 web[42]: world\n", &stdout},
		{config.Stream{Class: "FancyStdoutStream", Color: "green", TimeFormat: "%Y-%m-%d %H:%M:%S"}, Stdout,
			"\033[0;32m2026-11-23 10:00:00 web[42] | hello\033[0m\n\033[0;32m2026-11-23 10:00:00 web[42] | world\033[0m\n", &stdout},
	} {
		stdout.Reset()
		stderr.Reset()
		d, err := Open("web", tt.s, tt.spec, con)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := d.write([]byte("hello\nworld\n"), 42, at); err != nil {
			t.Fatal(err)
		}
		if got := tt.on.String(); got != tt.want {
			t.Errorf("%+v %s: wrote %q, want %q", tt.spec, tt.s, got, tt.want)
		}
		d.Close()
	}
	if a, b := fancyColor("", "web"), fancyColor("", "web"); a != b || a < 31 || a > 37 {
		t.Errorf("colour from the name: %d then %d", a, b)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// A worker whose output is not captured (close_child_stdout and _stderr)
// does not take the place of an exited one whose last lines are kept.
func TestUncapturedWorkersKeepNoPlace(t *testing.T) {
	o, _, _ := newTestOutput(t)
	w := capture(t, o, 1, Stdout)
	w.WriteString("last words\n")
	waitDone(t, o, w)
	for pid := 2; pid <= 2+keepExited; pid++ {
		p, err := o.Pipes(false, false)
		if err != nil {
			t.Fatal(err)
		}
		p.Start(pid)
	}
	if lines, _ := o.Tail(Query{Pid: 1}); len(lines) != 1 {
		t.Errorf("worker 1 has %d lines kept after %d uncaptured workers, want 1", len(lines), keepExited+1)
	}
}
