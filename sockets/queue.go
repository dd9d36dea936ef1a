package sockets

import (
	"encoding/binary"
	"errors"
	"fmt"
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
// do it several times a second: one getsockopt(TCP_INFO) per TCP listener
// (tcpi_unacked is the queue's length, tcpi_sacked its limit), and for
// every unix listener of a Read together one sock_diag dump of the
// listening unix sockets, with UNIX_DIAG_RQLEN (what ss -xl shows as
// Recv-Q and Send-Q). It keeps its netlink socket between reads. A
// QueueReader is not safe for concurrent use; its zero value is ready, and
// Close releases it.
type QueueReader struct {
	nl  int // netlink socket + 1; 0: not open
	seq uint32
	buf []byte
	ino map[uint64]int // during a Read: inode of a unix socket → index in its result
}

// Read returns the queue of each of socks, in order, appended to
// dst[:0]. A socket that is closed, does not listen or cannot be read has
// its Err set; the others are read all the same.
func (r *QueueReader) Read(dst []Queue, socks []*Socket) []Queue {
	dst = dst[:0]
	clear(r.ino)
	for i, s := range socks {
		q, ino := s.readQueue()
		if ino != 0 {
			if r.ino == nil {
				r.ino = map[uint64]int{}
			}
			r.ino[ino] = i
			q.Err = errNotListening // until the dump finds it listening
		}
		dst = append(dst, q)
	}
	if len(r.ino) > 0 {
		if err := r.dumpUnix(dst); err != nil {
			for _, i := range r.ino {
				dst[i].Err = err
			}
		}
	}
	return dst
}

// readQueue reads the queue of a TCP socket, or returns the inode of a
// unix socket for the dump (with q zero).
func (s *Socket) readQueue() (q Queue, ino uint64) {
	rc, err := s.file.SyscallConn()
	if err != nil {
		return Queue{Err: err}, 0
	}
	cerr := rc.Control(func(u uintptr) {
		fd := int(u)
		if s.family == unix.AF_UNIX {
			var st unix.Stat_t
			if err := unix.Fstat(fd, &st); err != nil {
				q.Err = err
				return
			}
			ino = st.Ino
			return
		}
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
	if cerr != nil {
		return Queue{Err: cerr}, 0
	}
	if q.Err != nil {
		q.Err = fmt.Errorf("socket %q: %w", s.spec.Name, q.Err)
	}
	return q, ino
}

// The kernel's TCP_LISTEN state, also a unix listener's.
const tcpListen = 10

// The sock_diag layout for AF_UNIX (linux/unix_diag.h), which x/sys/unix
// does not define.
const (
	unixDiagReqLen  = 24 // struct unix_diag_req
	unixDiagMsgLen  = 16 // struct unix_diag_msg
	udiagShowRQLen  = 0x10
	unixDiagRQLen   = 4 // UNIX_DIAG_RQLEN: struct unix_diag_rqlen {rqueue, wqueue u32}
	queueRecvBuffer = 32 << 10
)

// dumpUnix asks the kernel for every listening unix socket's queue and
// fills in those of r.ino.
func (r *QueueReader) dumpUnix(dst []Queue) error {
	fd, err := r.open()
	if err != nil {
		return fmt.Errorf("sock_diag: %w", err)
	}
	r.seq++
	var req [unix.NLMSG_HDRLEN + unixDiagReqLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	ne.PutUint32(req[8:], r.seq)
	d := req[unix.NLMSG_HDRLEN:]
	d[0] = unix.AF_UNIX
	ne.PutUint32(d[4:], 1<<tcpListen) // listening sockets only
	ne.PutUint32(d[12:], udiagShowRQLen)
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
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
		done, err := r.parseDump(r.buf[:n], dst)
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
func (r *QueueReader) parseDump(b []byte, dst []Queue) (done bool, err error) {
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
			if len(m) < unixDiagMsgLen {
				return false, fmt.Errorf("sock_diag: short answer (%d bytes)", len(m))
			}
			i, ok := r.ino[uint64(ne.Uint32(m[4:]))]
			if !ok {
				continue
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
		}
	}
	return false, nil
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
