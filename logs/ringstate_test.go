package logs

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"
)

// TestRingStateRoundTrip: the kept output survives JSON, and Tail and
// Follow read the same from the restored ring; a worker restored as
// running without its pipes becomes one of the exited.
func TestRingStateRoundTrip(t *testing.T) {
	o, _, _ := newTestOutput(t)
	for pid := 1; pid <= keepExited+2; pid++ {
		w := capture(t, o, pid, Stdout)
		fmt.Fprintf(w, "bye from %d\n", pid)
		waitDone(t, o, w)
	}
	live := capture(t, o, 100, Stderr)
	defer live.Close()
	for i := range 2000 {
		fmt.Fprintf(live, "%04d %s\n", i, strings.Repeat("r", 60))
	}
	waitFor(t, func() bool { _, last := o.Tail(Query{}); return last == keepExited+2+2000 })
	if _, err := o.Detach(); err != nil {
		t.Fatal(err)
	}
	defer o.Resume()
	kept, err := o.RingState()
	if err != nil {
		t.Fatal(err)
	}
	if cloexec(t, kept.FD) {
		t.Errorf("the kept output's memfd %d is close-on-exec", kept.FD)
	}
	b, err := json.Marshal(kept)
	if err != nil {
		t.Fatal(err)
	}
	var st RingState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	// The next image's copy: RestoreRing closes it, Resume closes o's.
	if st.FD, err = dupCloexec(kept.FD); err != nil {
		t.Fatal(err)
	}
	n, _, _ := newTestOutput(t)
	if err := n.RestoreRing(st); err != nil {
		t.Fatal(err)
	}
	wantLines, wantLast := o.Tail(Query{})
	gotLines, gotLast := n.Tail(Query{})
	if d := cmp.Diff(wantLines, gotLines, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); d != "" || gotLast != wantLast {
		t.Errorf("Tail after restore: last %d, want %d; (-want +got):\n%s", gotLast, wantLast, d)
	}
	if p, q := o.Follow(5, time.Time{}, 100), n.Follow(5, time.Time{}, 100); p.Next != q.Next || p.Dropped != q.Dropped || len(p.Lines) != len(q.Lines) {
		t.Errorf("Follow after restore: next %d dropped %d lines %d; want %d, %d, %d", q.Next, q.Dropped, len(q.Lines), p.Next, p.Dropped, len(p.Lines))
	}
	if err := n.RestoreRing(RingState{Seq: 1, FD: -1}); err == nil {
		t.Error("a second RestoreRing succeeded")
	}
	// Worker 100's pipe is not adopted: it is taken as exited, and the
	// oldest exited worker kept gives up its place.
	if err := n.Adopt(nil); err != nil {
		t.Fatal(err)
	}
	if lines, _ := n.Tail(Query{Pid: 3}); len(lines) != 0 {
		t.Errorf("worker 3 still kept after worker 100 was taken as exited")
	}
	if lines, _ := n.Tail(Query{Pid: 100}); len(lines) == 0 {
		t.Errorf("worker 100's output lost")
	}
}

// memfdWith returns a memfd holding b.
func memfdWith(t *testing.T, b []byte) int {
	t.Helper()
	fd, err := unix.MemfdCreate("test", unix.MFD_CLOEXEC)
	if err == nil {
		err = writeAll(fd, b)
	}
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func TestRestoreRingRefusesBadState(t *testing.T) {
	rec := func(seq uint64, s byte, data string) []byte {
		var b []byte
		b = append(b, byte(seq), s, 0, byte(len(data)))
		return append(b, data...)
	}
	one := func(pid int, b []byte) (RingState, []byte) {
		return RingState{Seq: 9, Workers: []WorkerRing{{Pid: pid, Size: len(b)}}}, b
	}
	for _, tt := range []struct {
		name string
		st   func() (RingState, []byte)
		want string
	}{
		{"truncated", func() (RingState, []byte) { return one(1, rec(1, 0, "ab\n")[:5]) }, "worker 1: truncated record"},
		{"length past the end", func() (RingState, []byte) { return one(1, []byte{1, 0, 0, 0x7f, 'a'}) }, "truncated"},
		{"no stream", func() (RingState, []byte) { return one(2, rec(1, 4, "ab\n")) }, "no stream 4"},
		{"not whole lines", func() (RingState, []byte) { return one(3, rec(1, 0, "ab")) }, "not whole lines"},
		{"past the last line", func() (RingState, []byte) { return one(4, rec(10, 0, "ab\n")) }, "past the last line read, 9"},
		{"twice", func() (RingState, []byte) {
			return RingState{Seq: 9, Workers: []WorkerRing{{Pid: 5}, {Pid: 5}}}, []byte{}
		}, "worker 5 named twice"},
		{"size past the end", func() (RingState, []byte) {
			st, b := one(6, rec(1, 0, "ab\n"))
			st.Workers[0].Size++
			return st, b
		}, "worker 6: 8 bytes of records, 7 left"},
		{"unclaimed", func() (RingState, []byte) {
			st, b := one(7, rec(1, 0, "ab\n"))
			st.Workers[0].Size--
			return st, b
		}, "worker 7: truncated"},
		{"left over", func() (RingState, []byte) {
			st, b := one(8, rec(1, 0, "ab\n"))
			return st, append(b, 0)
		}, "1 bytes of records no worker claims"},
		{"closed fd", func() (RingState, []byte) { return RingState{FD: 1 << 20}, nil }, "fd 1048576: fstat: bad file descriptor"},
		{"stdin", func() (RingState, []byte) { return RingState{FD: 0}, nil }, "fd 0 is not a memfd"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, _, _ := newTestOutput(t)
			st, b := tt.st()
			if b != nil {
				st.FD = memfdWith(t, b)
			}
			if err := o.RestoreRing(st); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("RestoreRing() = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	t.Run("not a memfd", func(t *testing.T) {
		o, _, _ := newTestOutput(t)
		r, w, err := Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		fd, err := dupCloexec(fdOf(r))
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := o.RestoreRing(RingState{FD: fd}); err == nil || !strings.Contains(err.Error(), "not a memfd") {
			t.Errorf("RestoreRing() of a pipe = %v, want an error saying it is not a memfd", err)
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
			t.Errorf("RestoreRing left fd %d open", fd)
		}
	})
	t.Run("without Detach", func(t *testing.T) {
		o, _, _ := newTestOutput(t)
		if st, err := o.RingState(); err == nil || st.FD != -1 {
			t.Errorf("RingState() without Detach = %+v, %v; want an error", st, err)
		}
	})
}

func FuzzRestoreRing(f *testing.F) {
	f.Add([]byte{1, 0, 0, 3, 'a', 'b', '\n'}, uint64(3))
	f.Add([]byte{}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, seq uint64) {
		o := NewOutput(&Dest{turn: make(chan struct{}, 1)}, &Dest{turn: make(chan struct{}, 1)}, nil)
		if o.ring.restore(RingState{Seq: seq, Workers: []WorkerRing{{Pid: 1, Size: len(b)}}}, b) == nil {
			o.Tail(Query{})
			o.Follow(0, time.Time{}, 0)
		}
	})
}

// BenchmarkRingState carries the kept output of a thousand workers, each
// written in 80-byte reads: 4 KiB each, and a full ring each (the worst).
func BenchmarkRingState(b *testing.B) {
	for _, kept := range []int{4 << 10, RingBytes} {
		b.Run(fmt.Sprintf("1000x%dKiB", kept>>10), func(b *testing.B) {
			o := NewOutput(&Dest{turn: make(chan struct{}, 1)}, &Dest{turn: make(chan struct{}, 1)}, nil)
			line := []byte(strings.Repeat("b", 79) + "\n")
			now := time.Now()
			for pid := 1; pid <= 1000; pid++ {
				o.ring.attach(pid, 1)
				for range kept / len(line) {
					o.ring.add(pid, Stdout, line, now)
				}
			}
			if _, err := o.Detach(); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				kept, err := o.RingState()
				if err != nil {
					b.Fatal(err)
				}
				js, err := json.Marshal(kept)
				if err != nil {
					b.Fatal(err)
				}
				n := NewOutput(&Dest{turn: make(chan struct{}, 1)}, &Dest{turn: make(chan struct{}, 1)}, nil)
				var st RingState
				if err := json.Unmarshal(js, &st); err != nil {
					b.Fatal(err)
				}
				if st.FD, err = dupCloexec(kept.FD); err != nil {
					b.Fatal(err)
				}
				if err := n.RestoreRing(st); err != nil {
					b.Fatal(err)
				}
			}
			o.Resume()
		})
	}
}
