package sockets

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// firstFD is the fd number of a child's first socket: ExtraFiles start
// after stdin, stdout and stderr.
const firstFD = 3

// Handoff is the fd layout of one spawn: the files to pass as ExtraFiles and
// how the child learns about them. Make one with [Prepare] right before
// starting a child and Close it right after.
type Handoff struct {
	// Files are the sockets to pass as exec.Cmd.ExtraFiles, in the order
	// of Prepare's argument: socket i is fd 3+i in the child.
	Files []*os.File
	// Env holds "LISTEN_FDS=N" and "LISTEN_FDNAMES=a:b" for systemd-style
	// children. LISTEN_PID, which must be the child's own pid, is left to
	// the arbiter's spawner, in the child before exec.
	Env []string
	// FDs maps a socket name to its fd number in the child (3+i): the value
	// of $(circus.sockets.NAME).
	FDs map[string]int

	// own holds the per-spawn copies that Close releases.
	own []*os.File
}

// Prepare builds the Handoff for one spawn of a child that inherits socks.
// The shared sockets are passed as they are; a socket bound with ReusePort
// (TCP) gets a fresh listening copy bound to the same address, so that each
// child owns a private listener and the kernel spreads connections over
// them. Prepare is safe to call concurrently, also on the same sockets. It
// fails, wrapping net.ErrClosed, if a socket was closed.
func Prepare(socks []*Socket) (*Handoff, error) {
	h := &Handoff{
		Files: make([]*os.File, len(socks)),
		FDs:   make(map[string]int, len(socks)),
	}
	names := make([]string, len(socks))
	for i, s := range socks {
		if s.closed.Load() {
			h.Close()
			return nil, fmt.Errorf("prepare socket %q %s: %w", s.spec.Name, s.Addr(), net.ErrClosed)
		}
		f := s.file
		if s.spec.ReusePort && s.listens() {
			var err error
			if f, err = s.listenerCopy(); err != nil {
				h.Close()
				return nil, err
			}
			h.own = append(h.own, f)
		}
		h.Files[i] = f
		h.FDs[s.spec.Name] = firstFD + i
		names[i] = s.spec.Name
	}
	h.Env = []string{
		"LISTEN_FDS=" + strconv.Itoa(len(socks)),
		"LISTEN_FDNAMES=" + strings.Join(names, ":"),
	}
	return h, nil
}

// Close releases the per-spawn copies of reuseport sockets. Call it once
// the child has started (its copies are its own) or failed to. It never
// closes the shared sockets. Close is idempotent.
func (h *Handoff) Close() error {
	var errs []error
	for _, f := range h.own {
		if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, err)
		}
	}
	h.own = nil
	return errors.Join(errs...)
}

// listenerCopy makes a new socket with s's options (SO_REUSEADDR and
// SO_REUSEPORT), bound to s's real address, and listening.
func (s *Socket) listenerCopy() (*os.File, error) {
	fd, err := s.inetSocket(copySockaddr(s.sa), false)
	if err != nil {
		return nil, fmt.Errorf("bind socket %q %s (reuseport copy): %w", s.spec.Name, s.Addr(), err)
	}
	return s.newFile(fd), nil
}

// copySockaddr returns a copy of sa for one bind: unix.Bind renders the
// address into a buffer inside the Sockaddr, and spawns prepare their
// reuseport copies concurrently.
func copySockaddr(sa unix.Sockaddr) unix.Sockaddr {
	switch v := sa.(type) {
	case *unix.SockaddrInet4:
		return &unix.SockaddrInet4{Port: v.Port, Addr: v.Addr}
	case *unix.SockaddrInet6:
		return &unix.SockaddrInet6{Port: v.Port, ZoneId: v.ZoneId, Addr: v.Addr}
	}
	return sa
}
