package e2e

import (
	"net"
	"strings"
	"syscall"
	"testing"
)

// stuckSubscriber connects to a PUB endpoint as a ZMTP 3.0 SUB, subscribes
// to everything and never reads a byte: the kernel buffers what it can (its
// receive buffer is made tiny) and then the publisher's writes stall. Written
// by hand because zmq4's own SUB keeps reading into an unbounded queue
// whether or not anyone receives.
func stuckSubscriber(t testing.TB, endpoint string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
	}}
	nc, err := d.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	// Greeting: signature, version 3.0, mechanism NULL, as-server 0.
	greeting := make([]byte, 64)
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	// READY command with Socket-Type = SUB.
	ready := append([]byte{5}, "READY"...)
	ready = append(ready, 11)
	ready = append(ready, "Socket-Type"...)
	ready = append(ready, 0, 0, 0, 3)
	ready = append(ready, "SUB"...)
	msg := append(greeting, 0x04, byte(len(ready)))
	msg = append(msg, ready...)
	// A message subscribing to every topic.
	msg = append(msg, 0x00, 1, 1)
	if _, err := nc.Write(msg); err != nil {
		t.Fatal(err)
	}
	return nc
}
