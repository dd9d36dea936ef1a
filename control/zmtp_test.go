package control

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// TestGuardRefusesWrappingSize: a frame declaring close to 2^64 bytes is
// refused by the guard, as any frame over 16 times the limit is. Found by
// FuzzGuardConn: the size plus the per-frame overhead wrapped around, and
// the frame went through to zmq4 (which refused it only because it was
// also over its own int64 bound).
func TestGuardRefusesWrappingSize(t *testing.T) {
	for _, size := range []uint64{1<<64 - 1, 1<<64 - frameOverhead, 1<<64 - frameOverhead - 1000} {
		fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		srv, cli := fileConn(t, fds[0]), fileConn(t, fds[1])
		gc := newGuardConn(srv, 1<<20)
		stream := make([]byte, zmtpguard.GreetingLen)
		stream = append(stream, zmtpguard.FlagLong)
		stream = binary.BigEndian.AppendUint64(stream, size)
		if _, err := cli.Write(stream); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(gc, make([]byte, zmtpguard.GreetingLen)); err != nil {
			t.Fatalf("reading the greeting: %v", err)
		}
		n, err := gc.Read(make([]byte, 16))
		if !errors.Is(err, errInboundTooLarge) {
			t.Errorf("a frame of %d bytes: Read = %d, %v; want %v", size, n, err, errInboundTooLarge)
		}
		srv.Close()
		cli.Close()
	}
}

// fileConn returns the net.Conn of one end of a socket pair, taking fd.
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
