package sockets

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Queue is what waits in a listening socket's accept queue: connections
// the kernel has established and no worker has accepted yet.
type Queue struct {
	Len int // connections waiting
	Max int // the queue's limit: listen()'s backlog as the kernel took it
	// Err says why the queue could not be read (the socket was closed,
	// or it does not listen); Len and Max are then 0.
	Err error
}

// CheckQueue reports whether the accept queue of a socket bound from s
// can be read ([QueueReader]): it must be a listening TCP socket, or a
// unix stream or seqpacket socket, without so_reuseport. The error says
// why not, in the words of the socket's keys.
func (s Spec) CheckQueue() error {
	family, err := parseFamily(s)
	if err != nil {
		return err
	}
	typ, err := parseType(s.Type)
	if err != nil {
		return err
	}
	proto, err := parseProto(s.Proto)
	if err != nil {
		return err
	}
	switch {
	case family == unix.AF_UNIX && (typ == unix.SOCK_STREAM || typ == unix.SOCK_SEQPACKET):
		return nil
	case family == unix.AF_UNIX:
		return fmt.Errorf("type %s has no accept queue (want SOCK_STREAM or SOCK_SEQPACKET)", strings.ToUpper(s.Type))
	case typ != unix.SOCK_STREAM:
		return fmt.Errorf("type %s has no accept queue (want SOCK_STREAM)", strings.ToUpper(s.Type))
	case proto != 0 && proto != unix.IPPROTO_TCP:
		return fmt.Errorf("proto %s: only a TCP listener's queue can be read", s.Proto)
	case s.ReusePort:
		return errors.New("so_reuseport gives each worker an accept queue of its own, which the arbiter does not hold")
	}
	return nil
}

// errNotListening is a socket's Queue.Err when it has no accept queue.
var errNotListening = errors.New("not a listening socket")

// queueTimeout bounds the wait for the kernel's answer to a sock_diag
// dump: it is never expected to be reached.
const queueTimeout = time.Second

// QueueReader reads the accept queues of bound sockets cheaply enough to
// do it many times a second for many sockets: one sock_diag dump of the
// listening sockets per family in use (TCP over IPv4, over IPv6, unix),
// whatever the number of sockets, matched to them by inode. For a
// listener the dump gives the queue's length and limit (INET_DIAG's
// idiag_rqueue and idiag_wqueue, UNIX_DIAG_RQLEN: what ss -l shows as
// Recv-Q and Send-Q). Where a TCP dump fails (a kernel without inet_diag),
// each TCP socket is read with getsockopt(TCP_INFO) instead (tcpi_unacked,
// tcpi_sacked). It keeps its netlink socket between reads. A QueueReader
// is not safe for concurrent use; its zero value is ready, and Close
// releases it.
type QueueReader struct {
	nl   int // netlink socket + 1; 0: not open
	seq  uint32
	buf  []byte
	req  []byte
	want [3]map[uint64]int // per dump (unix, inet, inet6): inode → index in the result
}

// The dumps a Read makes.
const (
	dumpUnix = iota
	dumpInet
	dumpInet6
)

// Read returns the queue of each of socks, in order, appended to
// dst[:0]. A socket that is closed, does not listen or cannot be read has
// its Err set; the others are read all the same.
func (r *QueueReader) Read(dst []Queue, socks []*Socket) []Queue {
	dst = dst[:0]
	for i := range r.want {
		clear(r.want[i])
	}
	for i, s := range socks {
		d := -1
		switch {
		case s.closed.Load():
			dst = append(dst, Queue{Err: fmt.Errorf("socket %q: %w", s.spec.Name, os.ErrClosed)})
			continue
		case s.sockIno == 0:
		case s.family == unix.AF_UNIX:
			d = dumpUnix
		case s.family == unix.AF_INET:
			d = dumpInet
		case s.family == unix.AF_INET6:
			d = dumpInet6
		}
		if d < 0 {
			dst = append(dst, s.tcpInfo())
			continue
		}
		if r.want[d] == nil {
			r.want[d] = map[uint64]int{}
		}
		r.want[d][s.sockIno] = i
		dst = append(dst, Queue{Err: errUnseen}) // until the dump finds it listening
	}
	for d, want := range r.want {
		if len(want) == 0 {
			continue
		}
		if err := r.dump(d, dst); err != nil {
			for _, i := range want {
				if d == dumpUnix {
					dst[i].Err = err
				} else {
					dst[i] = socks[i].tcpInfo()
				}
			}
		}
	}
	for i, q := range dst {
		if q.Err == errUnseen {
			dst[i].Err = fmt.Errorf("socket %q: %w", socks[i].spec.Name, errNotListening)
		}
	}
	return dst
}

// errUnseen marks, during a Read, a socket that no dump has found yet.
var errUnseen = errors.New("not seen")

// tcpInfo reads a TCP socket's queue with getsockopt(TCP_INFO).
func (s *Socket) tcpInfo() (q Queue) {
	err := s.Control(func(fd int) {
		ti, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
		switch {
		case err != nil:
			q.Err = err
		case ti.State != tcpListen:
			q.Err = errNotListening
		default:
			q.Len, q.Max = int(ti.Unacked), int(ti.Sacked)
		}
	})
	if err != nil {
		q.Err = err
	}
	if q.Err != nil {
		q.Err = fmt.Errorf("socket %q: %w", s.spec.Name, q.Err)
	}
	return q
}

// The kernel's TCP_LISTEN state, also a unix listener's.
const tcpListen = 10

// The sock_diag layouts (linux/unix_diag.h, linux/inet_diag.h), which
// x/sys/unix does not define.
const (
	unixDiagReqLen  = 24 // struct unix_diag_req
	unixDiagMsgLen  = 16 // struct unix_diag_msg, udiag_ino at 4
	udiagShowRQLen  = 0x10
	unixDiagRQLen   = 4  // UNIX_DIAG_RQLEN: struct unix_diag_rqlen {rqueue, wqueue u32}
	inetDiagReqLen  = 56 // struct inet_diag_req_v2
	inetDiagMsgLen  = 72 // struct inet_diag_msg: idiag_rqueue at 56, idiag_wqueue at 60, idiag_inode at 68
	queueRecvBuffer = 32 << 10
)

// dump asks the kernel for every listening socket of one kind and fills
// in the queues of r.want[d].
func (r *QueueReader) dump(d int, dst []Queue) error {
	fd, err := r.open()
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	r.seq++
	ne := binary.NativeEndian
	reqLen := inetDiagReqLen
	if d == dumpUnix {
		reqLen = unixDiagReqLen
	}
	if r.req == nil {
		r.req = make([]byte, unix.NLMSG_HDRLEN+max(inetDiagReqLen, unixDiagReqLen))
	}
	req := r.req[:unix.NLMSG_HDRLEN+reqLen]
	clear(req)
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], r.seq)
	b := req[unix.NLMSG_HDRLEN:]
	switch d {
	case dumpUnix:
		b[0] = unix.AF_UNIX
		ne.PutUint32(b[4:], 1<<tcpListen) // listening sockets only
		ne.PutUint32(b[12:], udiagShowRQLen)
	case dumpInet, dumpInet6:
		b[0], b[1] = unix.AF_INET, unix.IPPROTO_TCP
		if d == dumpInet6 {
			b[0] = unix.AF_INET6
		}
		ne.PutUint32(b[4:], 1<<tcpListen)
	}
	if err := unix.Sendto(fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		r.Close()
		return fmt.Errorf("sock_diag: %w", err)
	}
	if r.buf == nil {
		r.buf = make([]byte, queueRecvBuffer)
	}
	for {
		n, _, err := unix.Recvfrom(fd, r.buf, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			r.Close()
			return fmt.Errorf("sock_diag: %w", err)
		}
		done, err := r.parseDump(r.buf[:n], d, dst)
		if err != nil {
			r.Close()
			return err
		}
		if done {
			return nil
		}
	}
}

// parseDump reads one datagram of a dump's answer; done at NLMSG_DONE.
func (r *QueueReader) parseDump(b []byte, d int, dst []Queue) (done bool, err error) {
	ne := binary.NativeEndian
	for len(b) >= unix.NLMSG_HDRLEN {
		l := int(ne.Uint32(b[0:]))
		if l < unix.NLMSG_HDRLEN || l > len(b) {
			return false, fmt.Errorf("sock_diag: bad message length %d", l)
		}
		typ, seq, m := ne.Uint16(b[4:]), ne.Uint32(b[8:]), b[unix.NLMSG_HDRLEN:l]
		b = b[min(nlAlign(l), len(b)):]
		if seq != r.seq {
			continue // left over from a dump given up on
		}
		switch typ {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(m) < 4 {
				return false, errors.New("sock_diag: short error")
			}
			return false, fmt.Errorf("sock_diag: %w", unix.Errno(-int32(ne.Uint32(m))))
		case unix.SOCK_DIAG_BY_FAMILY:
			if d == dumpUnix {
				err = r.unixMsg(m, dst)
			} else {
				err = r.inetMsg(m, d, dst)
			}
			if err != nil {
				return false, err
			}
		}
	}
	return false, nil
}

func (r *QueueReader) unixMsg(m []byte, dst []Queue) error {
	ne := binary.NativeEndian
	if len(m) < unixDiagMsgLen {
		return fmt.Errorf("sock_diag: short answer (%d bytes)", len(m))
	}
	i, ok := r.want[dumpUnix][uint64(ne.Uint32(m[4:]))]
	if !ok {
		return nil
	}
	for a := m[unixDiagMsgLen:]; len(a) >= 4; {
		al := int(ne.Uint16(a[0:]))
		if al < 4 || al > len(a) {
			break
		}
		if ne.Uint16(a[2:]) == unixDiagRQLen && al >= 12 {
			dst[i] = Queue{Len: int(ne.Uint32(a[4:])), Max: int(ne.Uint32(a[8:]))}
		}
		a = a[min(nlAlign(al), len(a)):]
	}
	return nil
}

func (r *QueueReader) inetMsg(m []byte, d int, dst []Queue) error {
	ne := binary.NativeEndian
	if len(m) < inetDiagMsgLen {
		return fmt.Errorf("sock_diag: short answer (%d bytes)", len(m))
	}
	if i, ok := r.want[d][uint64(ne.Uint32(m[68:]))]; ok {
		dst[i] = Queue{Len: int(ne.Uint32(m[56:])), Max: int(ne.Uint32(m[60:]))}
	}
	return nil
}

func nlAlign(n int) int { return (n + 3) &^ 3 }

// open returns the netlink socket, opening it if need be.
func (r *QueueReader) open() (int, error) {
	if r.nl > 0 {
		return r.nl - 1, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, err
	}
	tv := unix.NsecToTimeval(queueTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	r.nl = fd + 1
	return fd, nil
}

// Close releases the reader's netlink socket; the reader can be used
// again, and opens another.
func (r *QueueReader) Close() error {
	if r.nl == 0 {
		return nil
	}
	err := unix.Close(r.nl - 1)
	r.nl = 0
	return err
}
