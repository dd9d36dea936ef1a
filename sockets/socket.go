package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// defaultBacklog is Circus's listen() backlog, used when Spec.Backlog is not
// positive.
const defaultBacklog = 2048

// Socket is one bound socket, shared by every worker that uses it. It is
// created by [Bind] and lives until [Socket.Close]. All methods are safe for
// concurrent use.
type Socket struct {
	// Immutable after Bind.
	spec   Spec
	family int
	typ    int
	proto  int
	file   *os.File      // the shared socket (CLOEXEC); nil never
	sa     unix.Sockaddr // the real bound address, for reuseport copies
	host   string        // the real bound host, "" for unix
	port   int           // the real bound port, 0 for unix
	// created is the unix path this Socket made, with the identity of that
	// inode, so that Close unlinks it only while it is still ours.
	created  string
	dev, ino uint64
	// sockIno is the socket's own inode (sockfs), by which sock_diag
	// names it; 0 if fstat failed.
	sockIno uint64

	closed    atomic.Bool // set by Close, read by Prepare
	closeOnce sync.Once
	closeErr  error
}

// Bind creates the socket described by spec, binds it and, for stream and
// seqpacket sockets, listens. It is meant to run once per socket, before any
// worker starts. The socket is close-on-exec and non-blocking unless
// spec.Blocking; [Prepare] hands it to children.
//
// With spec.ReusePort (TCP only), the socket is bound with SO_REUSEPORT but
// does not listen: it only reserves the address, and [Prepare] makes a
// listening copy for each spawn.
//
// Errors name the socket and its address and wrap the cause, so
// errors.Is(err, unix.EADDRINUSE) holds for a port already taken.
func Bind(spec Spec) (*Socket, error) {
	s, err := fromSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("bind socket %q: %w", spec.Name, err)
	}
	if s.family == unix.AF_UNIX {
		if spec.ReusePort {
			return nil, fmt.Errorf("bind socket %q %s: %w", spec.Name, spec.Path, errUnixReusePort)
		}
		err = s.bindUnix()
	} else {
		err = s.bindInet()
	}
	if err != nil {
		return nil, err
	}
	s.readSockIno()
	return s, nil
}

var errUnixReusePort = errors.New("so_reuseport applies to TCP and UDP sockets only")

// fromSpec returns a Socket for spec, not yet bound: its name, family,
// type and protocol checked.
func fromSpec(spec Spec) (*Socket, error) {
	if strings.ContainsAny(spec.Name, ":\x00\n") {
		return nil, errors.New("name must not contain ':' (it is listed in LISTEN_FDNAMES)")
	}
	family, err := parseFamily(spec)
	if err != nil {
		return nil, err
	}
	typ, err := parseType(spec.Type)
	if err != nil {
		return nil, err
	}
	proto, err := parseProto(spec.Proto)
	if err != nil {
		return nil, err
	}
	return &Socket{spec: spec, family: family, typ: typ, proto: proto}, nil
}

// readSockIno records the socket's inode, by which sock_diag names it.
func (s *Socket) readSockIno() {
	_ = s.Control(func(fd int) {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) == nil {
			s.sockIno = st.Ino
		}
	})
}

// BindAll binds specs in order with [Bind]. On the first failure it closes
// the sockets it already bound and returns the error. Two specs with the same
// name are an error, since a child finds its sockets by name.
func BindAll(specs []Spec) ([]*Socket, error) {
	socks := make([]*Socket, 0, len(specs))
	fail := func(err error) ([]*Socket, error) {
		for _, s := range socks {
			s.Close()
		}
		return nil, err
	}
	seen := make(map[string]bool, len(specs))
	for _, spec := range specs {
		if seen[spec.Name] {
			return fail(fmt.Errorf("bind socket %q: defined twice", spec.Name))
		}
		seen[spec.Name] = true
		s, err := Bind(spec)
		if err != nil {
			return fail(err)
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// Name returns the socket's name, as in [socket:NAME].
func (s *Socket) Name() string { return s.spec.Name }

// FD returns the number of the socket's descriptor in the arbiter (what
// Circus's listsockets reports), or -1 once it is closed. Read through
// SyscallConn, since os.File.Fd would make the socket blocking.
func (s *Socket) FD() int {
	fd := -1
	if rc, err := s.file.SyscallConn(); err == nil {
		_ = rc.Control(func(f uintptr) { fd = int(f) })
	}
	return fd
}

// Control calls f with the socket's descriptor in the arbiter, as
// syscall.RawConn.Control does: the descriptor is valid only until f
// returns, and must not be made blocking. It fails once the socket is
// closed.
func (s *Socket) Control(f func(fd int)) error {
	rc, err := s.file.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(u uintptr) { f(int(u)) })
}

// Spec returns the Spec the socket was bound from, unchanged.
func (s *Socket) Spec() Spec { return s.spec }

// Host returns the host the socket is really bound to, as an IP address
// ("127.0.0.1", "::1"), or "" for a unix socket.
func (s *Socket) Host() string { return s.host }

// Port returns the port the socket is really bound to (the kernel's choice
// when Spec.Port was 0), or 0 for a unix socket.
func (s *Socket) Port() int { return s.port }

// Addr returns "host:port" ("[::1]:8080" for IPv6), or the path of a unix
// socket.
func (s *Socket) Addr() string {
	if s.family == unix.AF_UNIX {
		return s.spec.Path
	}
	return net.JoinHostPort(s.host, strconv.Itoa(s.port))
}

// Close closes the arbiter's copy of the socket and, for a unix socket that
// Bind created, unlinks its path if the path still names the same file.
// Children keep their inherited copies. Close is idempotent: later calls
// return the first call's result.
func (s *Socket) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		var errs []error
		if s.created != "" {
			var st unix.Stat_t
			if err := unix.Lstat(s.created, &st); err == nil && st.Dev == s.dev && st.Ino == s.ino {
				if err := unix.Unlink(s.created); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, &os.PathError{Op: "unlink", Path: s.created, Err: err})
				}
			}
		}
		if err := s.file.Close(); err != nil {
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			s.closeErr = fmt.Errorf("close socket %q: %w", s.spec.Name, err)
		}
	})
	return s.closeErr
}

// newSocket creates a close-on-exec socket of s's family, type and protocol,
// non-blocking unless the spec asks for a blocking one. The flag is set at
// creation on the open file description that every child shares.
func (s *Socket) newSocket() (int, error) {
	flags := unix.SOCK_CLOEXEC
	if !s.spec.Blocking {
		flags |= unix.SOCK_NONBLOCK
	}
	fd, err := unix.Socket(s.family, s.typ|flags, s.proto)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	return fd, nil
}

// listens reports whether the socket's type calls for listen().
func (s *Socket) listens() bool {
	return s.typ == unix.SOCK_STREAM || s.typ == unix.SOCK_SEQPACKET
}

// listen calls listen() with the spec's backlog, if the type listens.
func (s *Socket) listen(fd int) error {
	if !s.listens() {
		return nil
	}
	backlog := s.spec.Backlog
	if backlog <= 0 {
		backlog = defaultBacklog
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return nil
}

// newFile wraps fd. os.NewFile keeps a non-blocking descriptor non-blocking
// even when os/exec later calls Fd on it for ExtraFiles.
func (s *Socket) newFile(fd int) *os.File {
	return os.NewFile(uintptr(fd), "socket:"+s.spec.Name)
}
