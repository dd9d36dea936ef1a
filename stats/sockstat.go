package stats

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socketReads is a socket's "reads" count for one sample: the number of
// connections waiting in a TCP listener's accept queue (TCP_INFO's
// tcpi_unacked, which Linux sets to the queue length on a listener; also
// for MPTCP, which Go's own listeners use by default since Go 1.24), and
// for a unix listener or a datagram socket 1 if something is waiting to be
// read, else 0. A socket that does not listen (the address-reserving socket
// of a reuseport watcher, whose workers listen on private copies) counts 0,
// as does a socket that is closed. It costs three or four system calls and
// never blocks.
func socketReads(c syscall.RawConn) int {
	if c == nil {
		return 0
	}
	n := 0
	err := c.Control(func(u uintptr) {
		fd := int(u)
		typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
		if err != nil {
			return
		}
		if typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET {
			if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc == 0 {
				return
			}
			if proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL); err == nil && (proto == unix.IPPROTO_TCP || proto == unix.IPPROTO_MPTCP) {
				if ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
					n = int(ti.Unacked)
				}
				return
			}
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if k, err := unix.Poll(pfd, 0); err == nil && k > 0 && pfd[0].Revents&unix.POLLIN != 0 {
			n = 1
		}
	})
	if err != nil {
		return 0
	}
	return n
}
