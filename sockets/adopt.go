package sockets

import (
	"errors"
	"fmt"
	"net"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// State is what a [Socket] hands to the next image of the arbiter when it
// upgrades in place: its fd goes across the exec under the same number,
// and the rest is what Bind learnt and cannot be read back from the fd.
// It encodes to JSON.
type State struct {
	Spec Spec
	// FD is the socket's descriptor, close-on-exec cleared by
	// [Socket.Handover].
	FD int
	// Host and Port are the address the socket is really bound to (the
	// kernel's port when the spec said 0); empty for a unix socket.
	Host string `json:",omitempty"`
	Port int    `json:",omitempty"`
	// Created is the unix path Bind made, and Dev and Ino the identity of
	// that file, so that Close, in whichever image, unlinks the path only
	// while it still names the same file.
	Created  string `json:",omitempty"`
	Dev, Ino uint64 `json:",omitempty"`
}

// Handover returns the socket's State and clears its fd's close-on-exec
// flag, so that an exec of the arbiter's new binary keeps it. Nothing is
// closed: after an exec that failed, [Socket.HandoverBack] makes the
// socket what it was. It fails, wrapping net.ErrClosed, once the socket
// is closed.
func (s *Socket) Handover() (State, error) {
	st := State{
		Spec: s.spec, Host: s.host, Port: s.port,
		Created: s.created, Dev: s.dev, Ino: s.ino,
	}
	if s.closed.Load() {
		return st, fmt.Errorf("hand over socket %q: %w", s.spec.Name, net.ErrClosed)
	}
	var kerr error
	err := s.Control(func(fd int) {
		st.FD = fd
		kerr = handover.KeepFD(fd)
	})
	if err = errors.Join(err, kerr); err != nil {
		return st, fmt.Errorf("hand over socket %q: %w", s.spec.Name, err)
	}
	return st, nil
}

// HandoverBack sets the socket's close-on-exec flag again after an exec
// that failed: from now on it goes to the workers that list it and to no
// other.
func (s *Socket) HandoverBack() {
	_ = s.Control(handover.CloseOnExec)
}

// Adopt returns the Socket that st describes, in the image an upgrade
// started: the fd is the one the previous image bound, and the Socket
// behaves as Bind's did (Prepare hands it out, reuseport copies bind its
// address, Close unlinks the path Bind created, the accept queue can be
// read). The fd is made close-on-exec again.
//
// The fd must be what the spec says: a socket of its family, type and
// protocol, listening if the type listens (bound and not listening with
// reuseport), non-blocking unless the spec is blocking, and bound to
// st's address (a unix socket: to the spec's abstract name, or to a
// path). Otherwise Adopt fails naming the socket and its fd, and leaves
// the fd as it is.
func Adopt(st State) (*Socket, error) {
	spec := st.Spec
	fail := func(err error) (*Socket, error) {
		return nil, fmt.Errorf("adopt socket %q (fd %d): %w", spec.Name, st.FD, err)
	}
	s, err := fromSpec(spec)
	if err != nil {
		return fail(err)
	}
	if s.family == unix.AF_UNIX && spec.ReusePort {
		return fail(errUnixReusePort)
	}
	if st.FD < firstFD {
		return fail(errors.New("not a descriptor a hand-over passes"))
	}
	if err := s.check(st.FD); err != nil {
		return fail(err)
	}
	if s.family != unix.AF_UNIX && (s.host != st.Host || s.port != st.Port) {
		return fail(fmt.Errorf("bound to %s, not %s", s.Addr(), net.JoinHostPort(st.Host, strconv.Itoa(st.Port))))
	}
	s.created, s.dev, s.ino = st.Created, st.Dev, st.Ino
	handover.CloseOnExec(st.FD)
	s.file = s.newFile(st.FD)
	s.readSockIno()
	return s, nil
}

// check reports why fd is not the socket s describes, and reads its bound
// address into s.
func (s *Socket) check(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("not a socket")
	}
	opt := func(name string, o int) (int, error) {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o)
		if err != nil {
			return 0, fmt.Errorf("getsockopt %s: %w", name, err)
		}
		return v, nil
	}
	family, err := opt("SO_DOMAIN", unix.SO_DOMAIN)
	if err != nil {
		return err
	}
	typ, err := opt("SO_TYPE", unix.SO_TYPE)
	if err != nil {
		return err
	}
	proto, err := opt("SO_PROTOCOL", unix.SO_PROTOCOL)
	if err != nil {
		return err
	}
	if s.proto == 0 {
		proto = 0 // the kernel's default for the family and type: any will do
	}
	if family != s.family || typ != s.typ || proto != s.proto {
		return fmt.Errorf("a %s socket, want %s", describe(family, typ, proto), describe(s.family, s.typ, s.proto))
	}
	accepting, err := opt("SO_ACCEPTCONN", unix.SO_ACCEPTCONN)
	if err != nil {
		return err
	}
	switch wantListen := s.listens() && !s.spec.ReusePort; {
	case wantListen && accepting == 0:
		return errors.New("does not listen")
	case !wantListen && accepting != 0:
		return errors.New("listens, and should not")
	}
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err != nil {
		return fmt.Errorf("fcntl F_GETFL: %w", err)
	}
	if nonblock := flags&unix.O_NONBLOCK != 0; nonblock == s.spec.Blocking {
		return fmt.Errorf("non-blocking is %v, the spec's blocking is %v", nonblock, s.spec.Blocking)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		return checkUnixName(u.Name, s.spec.Path)
	}
	s.sa = sa
	s.host, s.port = inetAddr(sa)
	return nil
}

// checkUnixName compares a unix socket's bound name with the spec's path.
// An abstract name must be the same; a path cannot be compared, since
// Bind binds in a temporary directory and renames the file into place,
// but it must be a path.
func checkUnixName(name, path string) error {
	abstract := len(path) > 0 && path[0] == '@'
	switch {
	case abstract && name != path:
		return fmt.Errorf("bound to %q, not %q", name, path)
	case !abstract && (name == "" || name[0] == '@'):
		return fmt.Errorf("bound to %q, not to a path", name)
	}
	return nil
}

// describe names a socket's family, type and protocol in the words of a
// [socket:NAME] section: "AF_INET SOCK_STREAM proto 6".
func describe(family, typ, proto int) string {
	f := map[int]string{unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6", unix.AF_UNIX: "AF_UNIX"}[family]
	if f == "" {
		f = "family " + strconv.Itoa(family)
	}
	t := map[int]string{
		unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM", unix.SOCK_SEQPACKET: "SOCK_SEQPACKET",
		unix.SOCK_RAW: "SOCK_RAW", unix.SOCK_RDM: "SOCK_RDM",
	}[typ]
	if t == "" {
		t = "type " + strconv.Itoa(typ)
	}
	if proto == 0 {
		return f + " " + t
	}
	return f + " " + t + " proto " + strconv.Itoa(proto)
}
