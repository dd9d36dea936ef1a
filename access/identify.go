package access

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Origin says how much is known of who is at the other end of a
// connection.
type Origin int

const (
	// Unknown: the peer could not be identified (the lookup failed). It
	// may do nothing: a failure to identify must never grant rights.
	Unknown Origin = iota
	// Local: a process of this host, whose uid the kernel vouches for
	// (SO_PEERCRED on a unix socket, sock_diag on tcp).
	Local
	// Remote: a tcp peer that is not a socket of this host (network
	// namespace), so nobody vouches for it.
	Remote
	// Authenticated: the peer gave the console's httpd_auth credentials.
	Authenticated
	// Internal: the arbiter itself, such as a built-in plugin acting
	// through the command table as Circus's plugins do through the socket.
	Internal
)

var originNames = [...]string{"unknown", "local", "remote", "authenticated", "internal"}

func (o Origin) String() string {
	if o >= 0 && int(o) < len(originNames) {
		return originNames[o]
	}
	return fmt.Sprintf("Origin(%d)", int(o))
}

// Peer is who sent a command, as far as the kernel or the credentials tell.
// The zero value is an Unknown peer, which may do nothing.
type Peer struct {
	Origin Origin
	// UID and GID are the peer process's ids, for a Local peer. GID is -1
	// where only the uid is known (tcp).
	UID, GID int
	// PID is the peer process's pid where the kernel says (SO_PEERCRED),
	// else 0.
	PID int
	// Name is the console user of an Authenticated peer, or what an
	// Internal one is ("plugin watchdog").
	Name string
	// Addr is the connection's remote address ("127.0.0.1:40112", or
	// "ipc" for a unix socket); empty for an Internal peer.
	Addr string
	// Via is the door it came through: "control", "console".
	Via string
	// Why says why an Unknown peer could not be identified.
	Why string
}

// String names the peer for log lines and refusals: "uid 65534",
// "uid 0 pid 812", "remote 10.0.0.7:4410", "console user admin".
func (p Peer) String() string {
	switch p.Origin {
	case Local:
		if p.PID > 0 {
			return fmt.Sprintf("uid %d pid %d", p.UID, p.PID)
		}
		return fmt.Sprintf("uid %d", p.UID)
	case Remote:
		return "remote " + p.Addr
	case Authenticated:
		return "console user " + p.Name
	case Internal:
		return p.Name
	}
	s := "unidentified peer"
	if p.Addr != "" {
		s += " " + p.Addr
	}
	if p.Why != "" {
		s += " (" + p.Why + ")"
	}
	return s
}

// Identify asks the kernel who holds the other end of c: SO_PEERCRED for a
// unix socket; for tcp, the owner of the peer's socket as sock_diag reports
// it, found by the connection's 4-tuple (what `ss -tne` shows). A tcp peer
// the lookup does not find is no socket of this host's network namespace:
// Remote. It never fails; a peer it cannot identify is Unknown, with Why.
func Identify(c net.Conn) Peer {
	switch c := c.(type) {
	case *net.UnixConn:
		p := Peer{Addr: "ipc"}
		rc, err := c.SyscallConn()
		if err != nil {
			p.Why = err.Error()
			return p
		}
		var cred *unix.Ucred
		cerr := rc.Control(func(fd uintptr) {
			cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
		})
		if cerr != nil {
			err = cerr
		}
		if err != nil {
			p.Why = "SO_PEERCRED: " + err.Error()
			return p
		}
		p.Origin, p.UID, p.GID, p.PID = Local, int(cred.Uid), int(cred.Gid), int(cred.Pid)
		return p
	case *net.TCPConn:
		local, lok := c.LocalAddr().(*net.TCPAddr)
		remote, rok := c.RemoteAddr().(*net.TCPAddr)
		p := Peer{Addr: c.RemoteAddr().String()}
		if !lok || !rok {
			p.Why = "no tcp addresses"
			return p
		}
		uid, err := tcpOwner(remote.AddrPort(), local.AddrPort())
		switch {
		case errors.Is(err, errNoSocket):
			p.Origin = Remote
		case err != nil:
			p.Why = err.Error()
		default:
			p.Origin, p.UID, p.GID = Local, uid, -1
		}
		return p
	}
	return Peer{Addr: c.RemoteAddr().String(), Why: fmt.Sprintf("a %T", c)}
}

var (
	// errNoSocket: sock_diag knows no socket with that 4-tuple.
	errNoSocket = errors.New("no such socket")
	// errClosed: the peer's socket exists but no process holds it.
	errClosed = errors.New("the peer closed its socket before it could be identified")
)

// tcpOwner returns the uid owning the tcp socket bound to src and
// connected to dst, by one exact sock_diag lookup (not a dump: the kernel
// finds the socket by its hash, whatever the number of sockets). An IPv4
// peer of a dual-stack listener shows up as ::ffff:a.b.c.d; its own socket
// may be either family, so both are asked.
func tcpOwner(src, dst netip.AddrPort) (int, error) {
	s, d := src.Addr().Unmap(), dst.Addr().Unmap()
	if s.Is4() && d.Is4() {
		uid, err := diagLookup(unix.AF_INET, netip.AddrPortFrom(s, src.Port()), netip.AddrPortFrom(d, dst.Port()))
		if !errors.Is(err, errNoSocket) {
			return uid, err
		}
		s, d = netip.AddrFrom16(s.As16()), netip.AddrFrom16(d.As16())
	}
	return diagLookup(unix.AF_INET6, netip.AddrPortFrom(s, src.Port()), netip.AddrPortFrom(d, dst.Port()))
}

// The layout of linux/inet_diag.h, which x/sys/unix does not carry.
const (
	nlmsgHdrLen    = 16
	diagReqLen     = 56 // struct inet_diag_req_v2
	diagMsgUIDOff  = 64 // inet_diag_msg.idiag_uid
	diagMsgInoOff  = 68 // inet_diag_msg.idiag_inode
	diagMsgMinLen  = 72 // struct inet_diag_msg
	diagNoCookie   = 0xffffffff
	diagTimeout    = time.Second
	diagRecvBuffer = 4096
)

// diagSock is one netlink socket kept for every lookup: opening one per
// lookup costs more than the lookup itself. Its mutex serializes the
// request-answer pairs; seq tells a late answer to an earlier, timed-out
// request from the one awaited.
var diagSock struct {
	mu  sync.Mutex
	fd  int // -1 until opened, and after a failure
	seq uint32
}

func init() { diagSock.fd = -1 }

// diagOpen returns the shared netlink socket, opening it if need be.
// Called with diagSock.mu held.
func diagOpen() (int, error) {
	if diagSock.fd >= 0 {
		return diagSock.fd, nil
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return -1, err
	}
	// A kernel that never answers must not hold a connection for ever.
	tv := unix.NsecToTimeval(diagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return -1, err
	}
	diagSock.fd = fd
	return fd, nil
}

// diagLookup sends one SOCK_DIAG_BY_FAMILY request for the tcp socket
// src→dst of family and returns its owner's uid, or errNoSocket.
func diagLookup(family int, src, dst netip.AddrPort) (int, error) {
	diagSock.mu.Lock()
	defer diagSock.mu.Unlock()
	fd, err := diagOpen()
	if err != nil {
		return 0, fmt.Errorf("sock_diag: %w", err)
	}
	diagSock.seq++
	seq := diagSock.seq

	var req [nlmsgHdrLen + diagReqLen]byte
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], seq)
	r := req[nlmsgHdrLen:]
	r[0], r[1] = byte(family), unix.IPPROTO_TCP
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], src.Port())
	binary.BigEndian.PutUint16(id[2:], dst.Port())
	putAddr(id[4:20], src.Addr())
	putAddr(id[20:36], dst.Addr())
	ne.PutUint32(id[40:], diagNoCookie)
	ne.PutUint32(id[44:], diagNoCookie)
	if err := unix.Sendto(fd, req[:], 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		diagFail()
		return 0, fmt.Errorf("sock_diag: %w", err)
	}

	var buf [diagRecvBuffer]byte
	for {
		n, _, err := unix.Recvfrom(fd, buf[:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			diagFail()
			return 0, fmt.Errorf("sock_diag: %w", err)
		}
		if n >= nlmsgHdrLen && ne.Uint32(buf[8:]) != seq {
			continue // the answer to a request that timed out
		}
		return parseDiag(buf[:n])
	}
}

// diagFail drops the shared socket after an error, so the next lookup
// starts afresh. Called with diagSock.mu held.
func diagFail() {
	unix.Close(diagSock.fd)
	diagSock.fd = -1
}

// parseDiag reads the answer to one exact lookup: an inet_diag_msg, or an
// NLMSG_ERROR (ENOENT when there is no such socket).
func parseDiag(b []byte) (int, error) {
	ne := binary.NativeEndian
	if len(b) < nlmsgHdrLen {
		return 0, fmt.Errorf("sock_diag: short answer (%d bytes)", len(b))
	}
	switch typ := ne.Uint16(b[4:]); typ {
	case unix.NLMSG_ERROR:
		if len(b) < nlmsgHdrLen+4 {
			return 0, errors.New("sock_diag: short error")
		}
		errno := unix.Errno(-int32(ne.Uint32(b[nlmsgHdrLen:])))
		if errno == unix.ENOENT {
			return 0, errNoSocket
		}
		return 0, fmt.Errorf("sock_diag: %w", errno)
	case unix.SOCK_DIAG_BY_FAMILY:
		if len(b) < nlmsgHdrLen+diagMsgMinLen {
			return 0, fmt.Errorf("sock_diag: short answer (%d bytes)", len(b))
		}
		m := b[nlmsgHdrLen:]
		// A socket its process already closed (orphaned, or a time-wait
		// mini-socket, which reports uid 0) has no inode: its uid would
		// vouch for nobody, or for root.
		if ne.Uint32(m[diagMsgInoOff:]) == 0 {
			return 0, errClosed
		}
		return int(ne.Uint32(m[diagMsgUIDOff:])), nil
	default:
		return 0, fmt.Errorf("sock_diag: unexpected message type %d", typ)
	}
}

// putAddr writes a into an idiag_src/idiag_dst field: four big-endian
// words, an IPv4 address in the first.
func putAddr(f []byte, a netip.Addr) {
	if a.Is4() {
		b := a.As4()
		copy(f, b[:])
		return
	}
	b := a.As16()
	copy(f, b[:])
}
