package logs

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
)

// cloexec reports whether fd is closed at an exec.
func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("fcntl(%d, F_GETFD): %v", fd, err)
	}
	return fl&unix.FD_CLOEXEC != 0
}

// readers is how many pipes o reads now.
func readers(o *Output) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pipes)
}

func TestDetachResume(t *testing.T) {
	o, so, se := newTestOutput(t)
	w1 := capture(t, o, 1, Stdout)
	w2 := capture(t, o, 2, Stderr)
	w1.WriteString("one\nhal")
	w2.WriteString("x\n")
	waitFor(t, func() bool { return so.String() == "one\n" && se.String() == "x\n" && pipeBuffered(t, w1) == 0 })

	states, err := o.Detach()
	if err != nil {
		t.Fatal(err)
	}
	got := make([]PipeState, len(states))
	for i, st := range states {
		got[i] = PipeState{Pid: st.Pid, Stream: st.Stream, Partial: st.Partial}
		if cloexec(t, st.FD) {
			t.Errorf("pid %d %s: fd %d still close-on-exec after Detach", st.Pid, st.Stream, st.FD)
		}
	}
	want := []PipeState{{Pid: 1, Stream: Stdout, Partial: []byte("hal")}, {Pid: 2, Stream: Stderr}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Detach() (-want +got, fds left out):\n%s", d)
	}
	if _, err := o.Detach(); err == nil {
		t.Error("a second Detach succeeded")
	}
	// Detached, nothing reads: what the workers write waits in the pipe.
	w1.WriteString("f\ntwo\n")
	if n := readers(o); n != 0 {
		t.Errorf("%d readers run after Detach", n)
	}
	if n := pipeBuffered(t, w1); n != 6 {
		t.Errorf("%d bytes wait in the pipe, want 6", n)
	}

	o.Resume()
	for _, st := range states {
		if !cloexec(t, st.FD) {
			t.Errorf("pid %d %s: fd %d not close-on-exec after Resume", st.Pid, st.Stream, st.FD)
		}
	}
	w2.WriteString("y\n")
	waitFor(t, func() bool { return so.String() == "one\nhalf\ntwo\n" && se.String() == "x\ny\n" })
	o.Resume() // without a Detach: nothing
	w2.Close()
	waitDone(t, o, w1)
	if lines, last := o.Tail(Query{}); len(lines) != 5 || last != 5 {
		t.Errorf("Tail: %d lines, last %d; want 5, 5", len(lines), last)
	}
}

// A pipe that ends while Detach waits is not handed over; a worker started
// while detached is read from Resume on.
func TestDetachEndedAndLateWorkers(t *testing.T) {
	o, so, _ := newTestOutput(t)
	if st, err := o.Detach(); err != nil || len(st) != 0 {
		t.Fatalf("Detach() of no pipes = %v, %v", st, err)
	}
	w := capture(t, o, 3, Stdout)
	w.WriteString("late\n")
	if n := readers(o); n != 0 {
		t.Errorf("%d readers run while detached", n)
	}
	o.Resume()
	waitFor(t, func() bool { return so.String() == "late\n" })
	w.WriteString("last")
	w.Close()
	st, err := o.Detach()
	if err != nil {
		t.Fatal(err)
	}
	// The reader stopped before or after it read "last", or saw the end
	// of the pipe first and wrote "last" out and ended.
	if len(st) > 1 || len(st) == 1 && (st[0].Pid != 3 || !strings.HasPrefix("last", string(st[0].Partial))) {
		t.Fatalf("Detach() = %+v", st)
	}
	o.Resume()
	waitDone(t, o, w)
	if got := so.String(); got != "late\nlast\n" {
		t.Errorf("written %q", got)
	}
}

// TestCloseWhileDetached: Close after a Detach never resumed closes the
// pipes held: the worker sees its reader gone.
func TestCloseWhileDetached(t *testing.T) {
	out, _ := memDest()
	errd, _ := memDest()
	o := NewOutput(out, errd, nil)
	w := capture(t, o, 4, Stdout)
	defer w.Close()
	if _, err := o.Detach(); err != nil {
		t.Fatal(err)
	}
	o.Close(0)
	if _, err := w.WriteString("anyone?\n"); err == nil {
		t.Error("write to a pipe after Close succeeded: its read end is still open")
	}
}

// TestDetachStuckDestination: a reader stuck writing to a FIFO nobody reads
// makes Detach fail within its bound, naming the FIFO, and every reader
// reads on: once the FIFO is read, every line arrives, once.
func TestDetachStuckDestination(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	fr, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	stuck, err := Open("web", Stdout, config.Stream{Class: "FileStream", Filename: fifo}, Consoles{})
	if err != nil {
		t.Fatal(err)
	}
	errd, se := memDest()
	o := NewOutput(stuck, errd, nil)
	defer o.Close(5 * time.Second)
	w := capture(t, o, 5, Stdout)
	e := capture(t, o, 5, Stderr)
	var want strings.Builder
	for i := range 300 {
		fmt.Fprintf(&want, "%04d %s\n", i, strings.Repeat("q", 995))
	}
	// More than the FIFO holds: the reader blocks writing to it (holding
	// the destination's lock) once it is full.
	go func() { w.WriteString(want.String()); w.Close() }()
	waitFor(t, func() bool { return pipeBuffered(t, fr) > 60<<10 && len(stuck.turn) == 1 })
	e.WriteString("e1\n")
	waitFor(t, func() bool { return se.String() == "e1\n" })

	st, err := o.Detach()
	if err == nil || !strings.Contains(err.Error(), fifo) {
		t.Fatalf("Detach() = %v, %v; want an error naming %s", st, err, fifo)
	}
	e.WriteString("e2\n")
	waitFor(t, func() bool { return se.String() == "e1\ne2\n" })

	fr.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, want.Len())
	if _, err := io.ReadFull(fr, got); err != nil {
		t.Fatalf("reading the FIFO: %v", err)
	}
	if string(got) != want.String() {
		t.Errorf("the FIFO got %d bytes, not the %d written; first difference at %d", len(got), want.Len(), firstDiff(string(got), want.String()))
	}
	// Once unstuck, a Detach goes through.
	if _, err := o.Detach(); err != nil {
		t.Errorf("Detach() once the FIFO is read: %v", err)
	}
	o.Resume()
	waitDone(t, o, e)
}

// TestAdoptChecksFDs: Adopt reads the pipes it is given, starting with
// their partial lines, and names every fd that is not a pipe's read end.
func TestAdoptChecksFDs(t *testing.T) {
	o, so, _ := newTestOutput(t)
	r, w, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	fd, err := dupCloexec(fdOf(r))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	file, err := os.Create(filepath.Join(t.TempDir(), "plain"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	states := []PipeState{
		{Pid: 10, Stream: Stdout, FD: fd, Partial: []byte("be")},
		{Pid: 11, Stream: Stdout, FD: fd},
		{Pid: 12, Stream: Stdout, FD: fdOf(file)},
		{Pid: 13, Stream: Stdout, FD: fdOf(w)},
		{Pid: 14, Stream: Stream(7), FD: fd},
		{Pid: 15, Stream: Stderr, FD: 1 << 20},
		{Pid: 16, Stream: Stderr, FD: 1},
	}
	err = o.Adopt(states)
	for _, want := range []string{
		"pid 11 stdout: fd " + fmt.Sprint(fd) + ": fd named twice",
		"pid 12 stdout: fd " + fmt.Sprint(fdOf(file)) + ": not a pipe",
		"pid 13 stdout: fd " + fmt.Sprint(fdOf(w)) + ": not the read end",
		"pid 14 stdout: fd " + fmt.Sprint(fd) + ": no stream 7",
		"pid 15 stderr: fd 1048576: fstat: bad file descriptor",
		"pid 16 stderr: fd 1: not a pipe's fd",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Adopt() = %v; want it to say %q", err, want)
		}
	}
	if !cloexec(t, fd) {
		t.Error("adopted fd not close-on-exec")
	}
	w.WriteString("gun\nfired\n")
	w.Close()
	if !waitTimeout(&o.wg, 10*time.Second) {
		t.Fatal("reader did not finish")
	}
	if got := so.String(); got != "begun\nfired\n" {
		t.Errorf("written %q, want %q", got, "begun\nfired\n")
	}
	if lines, _ := o.Tail(Query{Pid: 10}); len(lines) != 2 {
		t.Errorf("Tail of the adopted worker: %d lines, want 2", len(lines))
	}
}

// BenchmarkDetachResume stops (timed) and restarts (untimed) the readers of a thousand
// workers' two pipes, each holding a line begun.
func BenchmarkDetachResume(b *testing.B) {
	out, _ := memDest()
	errd, _ := memDest()
	o := NewOutput(out, errd, nil)
	var writers []*os.File
	for pid := 1; pid <= 1000; pid++ {
		p, err := o.Pipes(true, true)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range []Stream{Stdout, Stderr} {
			w, err := dupFile(p.Writer(s))
			if err != nil {
				b.Fatal(err)
			}
			w.WriteString("begun")
			writers = append(writers, w)
		}
		p.Start(pid)
	}
	for b.Loop() {
		st, err := o.Detach()
		if err != nil || len(st) != 2000 {
			b.Fatalf("Detach() = %d states, %v", len(st), err)
		}
		b.StopTimer()
		o.Resume()
		b.StartTimer()
	}
	for _, w := range writers {
		w.Close()
	}
	o.Close(10 * time.Second)
}
