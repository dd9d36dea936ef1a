package zmtpguard

import (
	"bytes"
	"errors"
	"net"
	"testing"
)

func TestAppendFrame(t *testing.T) {
	t.Parallel()
	long := bytes.Repeat([]byte("x"), 256)
	for _, tc := range []struct {
		name  string
		flags byte
		body  []byte
		want  []byte
	}{
		{"empty", 0, nil, []byte{0, 0}},
		{"more", FlagMore, []byte("ab"), []byte{1, 2, 'a', 'b'}},
		{"255", 0, long[:255], append([]byte{0, 255}, long[:255]...)},
		{"256 is long", FlagMore, long, append([]byte{3, 0, 0, 0, 0, 0, 0, 1, 0}, long...)},
		{"command", FlagCommand, []byte("P"), []byte{4, 1, 'P'}},
	} {
		if got := AppendFrame(nil, tc.flags, tc.body); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: AppendFrame = %v, want %v", tc.name, got, tc.want)
		}
		if got := AppendFrameHeader(nil, tc.flags, len(tc.body)); !bytes.Equal(got, tc.want[:len(tc.want)-len(tc.body)]) {
			t.Errorf("%s: AppendFrameHeader = %v", tc.name, got)
		}
	}
}

func TestCompleteFrames(t *testing.T) {
	t.Parallel()
	two := AppendFrame(AppendFrame(nil, FlagMore, []byte("abc")), 0, bytes.Repeat([]byte("y"), 300))
	for _, tc := range []struct {
		name string
		in   []byte
		want int
	}{
		{"nothing", nil, 0},
		{"one byte", []byte{0}, 0},
		{"empty frame", []byte{0, 0}, 2},
		{"short body missing", []byte{0, 3, 'a'}, 0},
		{"long header cut", []byte{FlagLong, 0, 0, 0}, 0},
		{"two frames", two, len(two)},
		{"two frames, second cut", two[:len(two)-1], 5},
		{"two frames, next header cut", append(append([]byte{}, two...), 0), len(two)},
	} {
		if got := CompleteFrames(tc.in); got != tc.want {
			t.Errorf("%s: CompleteFrames = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDiverter(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	d := NewDiverter(a)
	go d.Write([]byte("hi"))
	buf := make([]byte, 2)
	if _, err := b.Read(buf); err != nil || string(buf) != "hi" {
		t.Fatalf("before Divert: peer read %q, %v", buf, err)
	}
	d.Divert()
	ping := AppendFrame(nil, FlagCommand, []byte("PONG"))
	if n, err := d.Write(ping[:3]); n != 3 || err != nil {
		t.Fatalf("diverted Write = %d, %v", n, err)
	}
	<-d.Kick()
	if got := d.TakeControl(); got != nil {
		t.Errorf("TakeControl with half a frame = %v, want nil", got)
	}
	d.Write(ping[3:])
	<-d.Kick()
	if got := d.TakeControl(); !bytes.Equal(got, ping) {
		t.Errorf("TakeControl = %v, want %v", got, ping)
	}
	if got := d.TakeControl(); got != nil {
		t.Errorf("second TakeControl = %v, want nil", got)
	}
}

func TestGather(t *testing.T) {
	t.Parallel()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	d := NewDiverter(a)
	d.Divert()
	stop, readerDone := make(chan struct{}), make(chan struct{})
	q := make(chan []byte, 8)
	pong := AppendFrame(nil, FlagCommand, []byte("PONG"))
	// One step at a time, so that select has a single ready case.
	for _, tc := range []struct {
		name    string
		queue   []string
		control []byte
		want    []string
		wantN   int
	}{
		{"two of three queued", []string{"1", "2", "3"}, nil, []string{"1", "2"}, 2},
		{"the rest", nil, nil, []string{"3"}, 1},
		{"a kick", nil, pong, []string{string(pong)}, 0},
		{"a kick with half a frame", nil, pong[:2], nil, 0},
		{"a message, then the rest of the frame", []string{"4"}, pong[2:], []string{"4", string(pong)}, 1},
	} {
		for _, m := range tc.queue {
			q <- []byte(m)
		}
		if tc.control != nil {
			d.Write(tc.control)
			if tc.queue != nil {
				<-d.Kick() // leave q the only ready case
			}
		}
		bufs, n, err := d.Gather(nil, q, 2, stop, readerDone)
		if err != nil || n != tc.wantN || len(bufs) != len(tc.want) {
			t.Fatalf("%s: Gather = %q, %d, %v; want %q, %d", tc.name, bufs, n, err, tc.want, tc.wantN)
		}
		for i := range bufs {
			if string(bufs[i]) != tc.want[i] {
				t.Errorf("%s: Gather buffer %d = %q, want %q", tc.name, i, bufs[i], tc.want[i])
			}
		}
	}
	close(readerDone)
	if _, _, err := d.Gather(nil, q, 2, stop, readerDone); err == nil || err.Error() != "peer closed the connection" {
		t.Errorf("Gather after readerDone = %v", err)
	}
	close(stop)
	if _, _, err := d.Gather(nil, q, 2, stop, make(chan struct{})); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Gather after stop = %v, want net.ErrClosed", err)
	}
}
