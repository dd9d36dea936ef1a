package handover

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The arbiter's own listeners (control, events, stats, console, metrics)
// go across an upgrade under a key that names what the listener is for
// and the address it was configured with ("zmq tcp://127.0.0.1:5555",
// "http 127.0.0.1:8080"): the next image, reading the same configuration,
// asks for the same keys. A key whose configuration changed is not asked
// for, and the lead closes what [Unclaimed] returns.
//
// table is process-wide because the listeners are: each endpoint binds
// its own, from packages that know nothing of an upgrade but the key.
var table struct {
	mu        sync.Mutex
	inherited map[string]int  // key → fd handed over, not yet taken
	taken     map[string]bool // inherited keys that Listen took
	open      []entry         // every listener Listen returned, until seen closed
}

type entry struct {
	key string
	ln  net.Listener
}

// Listen returns the listener inherited under key if this image was
// started by an upgrade and the image before it handed one over under
// that key (see [Inherit]); otherwise it calls net.Listen(network,
// address). network is "tcp", "tcp4", "tcp6", "unix" or "unixpacket".
//
// An inherited listener behaves as a bound one: it is in Go's poller
// (non-blocking), its Addr is the address it was bound to, and a unix
// listener unlinks its path on Close, as net.Listen's does, unless the
// caller turns that off. It is an error, naming the key, if the fd is not
// a listening socket of network's family and type, if it is bound to
// another address than address (a unix path, or a tcp port other than 0),
// or if key was inherited and already taken; the fd is then left as it
// is, since it may be something this image opened since.
//
// Every listener returned is registered under key for [Listeners] until
// it is closed.
func Listen(key, network, address string) (net.Listener, error) {
	fd, inherited, err := take(key)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if inherited {
		ln, err = adopt(fd, network, address)
		if err != nil {
			return nil, fmt.Errorf("inherited listener %q (fd %d): %w", key, fd, err)
		}
	} else if ln, err = net.Listen(network, address); err != nil {
		return nil, err
	}
	table.mu.Lock()
	defer table.mu.Unlock()
	pruneLocked()
	table.open = append(table.open, entry{key, ln})
	return ln, nil
}

// take removes key from the inherited table and returns its fd.
func take(key string) (fd int, ok bool, err error) {
	table.mu.Lock()
	defer table.mu.Unlock()
	if table.taken[key] {
		return -1, false, fmt.Errorf("inherited listener %q: taken twice", key)
	}
	fd, ok = table.inherited[key]
	if ok {
		delete(table.inherited, key)
		table.taken[key] = true
	}
	return fd, ok, nil
}

// adopt checks that fd is what network and address describe and makes a
// listener of it. The listener holds a duplicate, and fd is closed only
// once that worked: until then it may still be needed for the way back.
func adopt(fd int, network, address string) (net.Listener, error) {
	if err := checkListener(fd, network, address); err != nil {
		return nil, err
	}
	dup, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	f := os.NewFile(uintptr(dup), "listener")
	ln, err := net.FileListener(f)
	f.Close()
	if err != nil {
		return nil, err
	}
	unix.Close(fd)
	if ul, ok := ln.(*net.UnixListener); ok {
		// net.FileListener leaves the path alone on Close; net.Listen's
		// listener removes it, and this one stands for that.
		ul.SetUnlinkOnClose(true)
	}
	return ln, nil
}

// checkListener reports why fd is not a listening socket of network's
// family and type, bound to address.
func checkListener(fd int, network, address string) error {
	var families []int
	typ := unix.SOCK_STREAM
	switch network {
	case "tcp":
		families = []int{unix.AF_INET, unix.AF_INET6}
	case "tcp4":
		families = []int{unix.AF_INET}
	case "tcp6":
		families = []int{unix.AF_INET6}
	case "unix":
		families = []int{unix.AF_UNIX}
	case "unixpacket":
		families, typ = []int{unix.AF_UNIX}, unix.SOCK_SEQPACKET
	default:
		return fmt.Errorf("network %q cannot be inherited", network)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("fstat: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("not a socket")
	}
	family, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil {
		return fmt.Errorf("getsockopt SO_DOMAIN: %w", err)
	}
	gotType, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return fmt.Errorf("getsockopt SO_TYPE: %w", err)
	}
	if !slices.Contains(families, family) || gotType != typ {
		return fmt.Errorf("a %s %s socket, not a %s listener", familyName(family), typeName(gotType), network)
	}
	if listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil {
		return fmt.Errorf("getsockopt SO_ACCEPTCONN: %w", err)
	} else if listening == 0 {
		return fmt.Errorf("a %s socket that does not listen", network)
	}
	return checkAddr(fd, address)
}

func familyName(f int) string {
	switch f {
	case unix.AF_INET:
		return "AF_INET"
	case unix.AF_INET6:
		return "AF_INET6"
	case unix.AF_UNIX:
		return "AF_UNIX"
	}
	return "family " + strconv.Itoa(f)
}

func typeName(t int) string {
	switch t {
	case unix.SOCK_STREAM:
		return "SOCK_STREAM"
	case unix.SOCK_DGRAM:
		return "SOCK_DGRAM"
	case unix.SOCK_SEQPACKET:
		return "SOCK_SEQPACKET"
	}
	return "type " + strconv.Itoa(t)
}

// checkAddr compares fd's bound address with address: a unix path
// exactly, a tcp address by its port when one is given (a host name and
// the address it resolved to cannot be compared without resolving it
// again).
func checkAddr(fd int, address string) error {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	port := 0
	switch a := sa.(type) {
	case *unix.SockaddrUnix:
		if a.Name != address {
			return fmt.Errorf("bound to %q, not %q", a.Name, address)
		}
		return nil
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if want, err := strconv.Atoi(p); err == nil && want != 0 && want != port {
		return fmt.Errorf("bound to port %d, not %s", port, address)
	}
	return nil
}

// Listeners returns the fd of every listener [Listen] returned that is
// still open, by key, with close-on-exec cleared so that it goes across
// the exec under the same number. Two open listeners under one key are an
// error (the next image could not tell them apart: two endpoints
// configured with port 0, say); so is a listener whose fd cannot be
// reached. On error, no flag is left cleared.
func Listeners() (map[string]int, error) {
	table.mu.Lock()
	defer table.mu.Unlock()
	pruneLocked()
	fds := make(map[string]int, len(table.open))
	var err error
	for _, e := range table.open {
		if _, dup := fds[e.key]; dup {
			err = fmt.Errorf("hand over listener %q: two listeners have this key", e.key)
			break
		}
		var kerr error
		cerr := control(e.ln, func(fd int) {
			fds[e.key] = fd
			kerr = KeepFD(fd)
		})
		if errors.Is(cerr, net.ErrClosed) {
			continue // closed since pruneLocked: no longer registered
		}
		if err = errors.Join(cerr, kerr); err != nil {
			err = fmt.Errorf("hand over listener %q: %w", e.key, err)
			break
		}
	}
	if err != nil {
		for _, fd := range fds {
			CloseOnExec(fd)
		}
		return nil, err
	}
	return fds, nil
}

// ListenersBack sets close-on-exec again on every open listener, after an
// exec that failed: the fds must not leak into the workers spawned from
// now on.
func ListenersBack() {
	table.mu.Lock()
	defer table.mu.Unlock()
	for _, e := range table.open {
		_ = control(e.ln, CloseOnExec)
	}
}

// Inherit sets the table of listeners handed over by the image before
// this one (key → fd), for [Listen] to take; call it before any Listen.
// The fds are made close-on-exec at once: a worker spawned before a
// listener is taken must not inherit it.
func Inherit(fds map[string]int) {
	table.mu.Lock()
	defer table.mu.Unlock()
	table.inherited = maps.Clone(fds)
	table.taken = make(map[string]bool, len(fds))
	for _, fd := range fds {
		CloseOnExec(fd)
	}
}

// Inherited reports whether a listener inherited under key waits to be
// taken by [Listen]; an endpoint that removes a stale unix socket file
// before it binds must not remove the live one it is about to inherit.
func Inherited(key string) bool {
	table.mu.Lock()
	defer table.mu.Unlock()
	_, ok := table.inherited[key]
	return ok
}

// Unclaimed returns the inherited listeners that no [Listen] took (an
// endpoint whose configuration changed or went away), by key, and forgets
// them: the caller closes each fd once start-up is over, and says so in
// the log.
func Unclaimed() map[string]int {
	table.mu.Lock()
	defer table.mu.Unlock()
	left := table.inherited
	table.inherited = nil
	if left == nil {
		left = map[string]int{}
	}
	return left
}

// pruneLocked forgets the listeners that were closed.
func pruneLocked() {
	open := table.open[:0]
	for _, e := range table.open {
		if err := control(e.ln, func(int) {}); !errors.Is(err, net.ErrClosed) {
			open = append(open, e)
		}
	}
	clear(table.open[len(open):])
	table.open = open
}

// control calls f with ln's fd, as syscall.RawConn.Control does: never
// through Fd, which would make the socket blocking for every holder of it.
func control(ln net.Listener, f func(fd int)) error {
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("%T has no fd", ln)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return err
	}
	return rc.Control(func(fd uintptr) { f(int(fd)) })
}
