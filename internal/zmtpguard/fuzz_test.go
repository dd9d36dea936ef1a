package zmtpguard

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
)

// frameSeeds are byte strings around frame boundaries: whole frames, cut
// headers and bodies, long headers with small and huge sizes.
func frameSeeds() [][]byte {
	long := func(size uint64) []byte { return binary.BigEndian.AppendUint64([]byte{FlagLong}, size) }
	two := AppendFrame(AppendFrame(nil, FlagMore, []byte("abc")), 0, bytes.Repeat([]byte("y"), 300))
	return [][]byte{
		nil,
		{0},
		{0, 0},
		AppendFrame(nil, FlagCommand, []byte("\x04PONG")),
		two,
		two[:len(two)-1],
		append(long(3), "abc"...),
		long(1<<64 - 1),
		append(long(1<<63), 0, 0),
		append(AppendFrame(nil, 0, nil), FlagLong, 0, 0, 0),
	}
}

// FuzzCompleteFrames: CompleteFrames returns a prefix that a reference
// parser reads as whole frames, after which no whole frame follows.
func FuzzCompleteFrames(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n := CompleteFrames(b)
		if n < 0 || n > len(b) {
			t.Fatalf("CompleteFrames(%x) = %d, outside [0, %d]", b, n, len(b))
		}
		frames, rest := splitFrames(b[:n])
		if len(rest) != 0 {
			t.Fatalf("CompleteFrames(%x) = %d, but %x is left of that prefix", b, n, rest)
		}
		if more, _ := splitFrames(b[n:]); len(more) != 0 {
			t.Fatalf("CompleteFrames(%x) = %d, but a whole frame follows", b, n)
		}
		// Frames written again with AppendFrame read back the same.
		var again []byte
		for _, fr := range frames {
			again = AppendFrame(again, fr.flags&^FlagLong, fr.body)
		}
		if CompleteFrames(again) != len(again) {
			t.Fatalf("AppendFrame of %d frames: CompleteFrames = %d of %d bytes", len(frames), CompleteFrames(again), len(again))
		}
		back, _ := splitFrames(again)
		for i := range back {
			if back[i].flags&^FlagLong != frames[i].flags&^FlagLong || !bytes.Equal(back[i].body, frames[i].body) {
				t.Fatalf("frame %d written again reads %+v, want %+v", i, back[i], frames[i])
			}
		}
	})
}

type frame struct {
	flags byte
	body  []byte
}

// splitFrames reads whole frames from b (ZMTP 3.0: a flags byte, a one- or
// eight-byte size, the body), returning them and the bytes left.
func splitFrames(b []byte) ([]frame, []byte) {
	var out []frame
	for len(b) >= 2 {
		flags := b[0]
		var size uint64
		var hdr int
		if flags&FlagLong == 0 {
			size, hdr = uint64(b[1]), 2
		} else if len(b) >= 9 {
			size, hdr = binary.BigEndian.Uint64(b[1:9]), 9
		} else {
			break
		}
		if size > uint64(len(b)-hdr) {
			break
		}
		out = append(out, frame{flags, b[hdr : hdr+int(size)]})
		b = b[hdr+int(size):]
	}
	return out, b
}

// FuzzDiverter writes data to a Diverter in pieces cut at cuts: the first
// piece before Divert, which must reach the peer of a real socket, the
// others after, with a TakeControl after each. Every diverted write is
// kicked, and what TakeControl returns, put together, is the whole
// frames of the diverted bytes, in order.
func FuzzDiverter(f *testing.F) {
	for i, s := range frameSeeds() {
		f.Add(s, []byte{byte(i), 1, 2, 3, 9, 200})
	}
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		pieces := cut(data, cuts)
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		a, b := fileConn(t, fds[0]), fileConn(t, fds[1])
		defer a.Close()
		defer b.Close()
		d := NewDiverter(a)
		direct := pieces[0]
		// A socket pair holds far more than a fuzz input: no reader needed.
		if n, err := d.Write(direct); n != len(direct) || err != nil {
			t.Fatalf("Write before Divert = %d, %v", n, err)
		}
		got := make([]byte, len(direct))
		if _, err := io.ReadFull(b, got); err != nil || !bytes.Equal(got, direct) {
			t.Fatalf("peer read %x, %v; want %x", got, err, direct)
		}
		d.Divert()
		var diverted, taken []byte
		for _, p := range pieces[1:] {
			if n, err := d.Write(p); n != len(p) || err != nil {
				t.Fatalf("diverted Write = %d, %v", n, err)
			}
			select {
			case <-d.Kick():
			default:
				t.Fatalf("no kick after a diverted write")
			}
			diverted = append(diverted, p...)
			ctl := d.TakeControl()
			if CompleteFrames(ctl) != len(ctl) {
				t.Fatalf("TakeControl = %x, not whole frames", ctl)
			}
			taken = append(taken, ctl...)
		}
		if want := diverted[:CompleteFrames(diverted)]; !bytes.Equal(taken, want) {
			t.Fatalf("TakeControl gave %x in all, want %x", taken, want)
		}
	})
}

// cut splits data at the offsets cuts give (each byte the length of the
// next piece, so the first is at most 255 bytes); without cuts, the first
// piece is empty.
func cut(data, cuts []byte) [][]byte {
	if len(cuts) == 0 {
		return [][]byte{nil, data}
	}
	var out [][]byte
	for _, c := range cuts {
		n := min(int(c), len(data))
		out = append(out, data[:n])
		data = data[n:]
	}
	return append(out, data)
}

func fileConn(t *testing.T, fd int) net.Conn {
	t.Helper()
	f := os.NewFile(uintptr(fd), "socketpair")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
