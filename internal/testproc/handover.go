package testproc

import (
	"net"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// HandedOver makes a listener as the image before an in-place upgrade
// leaves it for the next: bound with net.Listen(network, address), its fd
// duplicated and the listener closed without removing a unix path (an
// exec runs no Close). It returns the fd, to [handover.Inherit] under
// key, and the listener's address. The fd is closed at the end of the
// test if no handover.Listen took it by then.
func HandedOver(t testing.TB, key, network, address string) (fd int, addr string) {
	t.Helper()
	ln, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := ln.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var derr error
	if err := rc.Control(func(f uintptr) { fd, derr = unix.Dup(int(f)) }); err != nil || derr != nil {
		t.Fatalf("dup %s: %v %v", ln.Addr(), err, derr)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	addr = ln.Addr().String()
	ln.Close()
	t.Cleanup(func() {
		// Once taken, the number may name another test's fd.
		if handover.Inherited(key) {
			unix.Close(fd)
		}
	})
	return fd, addr
}
