package stats

import (
	"context"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// FromArbiter returns a [Source] reading a's watchers and sockets. Its
// Watchers asks each watcher's loop for its workers (see
// [arbiter.Watcher.Info]), so it waits for loops that are busy and blocks
// until ctx is done if a has not started running; watchers that were
// removed meanwhile are left out.
func FromArbiter(a *arbiter.Arbiter) Source {
	return &arbiterSource{a: a, reserved: make(map[*sockets.Socket]int)}
}

type arbiterSource struct {
	a *arbiter.Arbiter

	mu       sync.Mutex
	reserved map[*sockets.Socket]int // fd of each reuseport socket, found in /proc/self/fd
}

func (s *arbiterSource) Watchers(ctx context.Context) ([]Watcher, error) {
	ws := s.a.Watchers()
	out := make([]Watcher, 0, len(ws))
	for _, w := range ws {
		_, procs, err := w.Info(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue // removed by a reload
		}
		// Info comes from a map; wid order is spawn order, as Circus lists.
		slices.SortFunc(procs, func(a, b arbiter.ProcessInfo) int { return a.Wid - b.Wid })
		sw := Watcher{Name: w.Name(), Procs: make([]Process, len(procs))}
		for i, p := range procs {
			sw.Procs[i] = Process{Pid: p.Pid, Wid: p.Wid, Started: p.Started}
		}
		out = append(out, sw)
	}
	return out, nil
}

func (s *arbiterSource) Sockets() []Socket {
	socks := s.a.Sockets()
	out := make([]Socket, 0, len(socks))
	s.mu.Lock()
	defer s.mu.Unlock()
	live := make(map[*sockets.Socket]bool, len(socks))
	for _, sk := range socks {
		live[sk] = true
		st := Socket{Name: sk.Name(), Address: sk.Addr(), FD: -1}
		if sk.Spec().ReusePort {
			st.FD = s.reservedFD(sk)
		} else if c, fd, ok := sharedConn(sk); ok {
			st.Conn, st.FD = c, fd
		}
		if st.FD < 0 {
			continue // closed by a reload meanwhile
		}
		out = append(out, st)
	}
	for sk := range s.reserved {
		if !live[sk] {
			delete(s.reserved, sk)
		}
	}
	return out
}

// sharedConn reaches the socket every worker shares. The sockets package
// gives no raw access, but a Handoff's file for a socket without
// ReusePort is the shared socket itself (no copy is made); the Handoff
// owns nothing then, and SyscallConn keeps the file's mode (Fd would make
// it blocking). Control reports an error once the socket is closed.
func sharedConn(sk *sockets.Socket) (c syscall.RawConn, fd int, ok bool) {
	h, err := sockets.Prepare([]*sockets.Socket{sk})
	if err != nil {
		return nil, -1, false
	}
	defer h.Close()
	rc, err := h.Files[0].SyscallConn()
	if err != nil {
		return nil, -1, false
	}
	if rc.Control(func(u uintptr) { fd = int(u) }) != nil {
		return nil, -1, false
	}
	return rc, fd, true
}

// reservedFD finds the fd of a reuseport socket, which Prepare would copy
// rather than return: the socket in /proc/self/fd that does not listen, has
// SO_REUSEPORT and is bound to sk's address. The fd is cached and checked
// again on every call, since a closed socket's number is reused.
func (s *arbiterSource) reservedFD(sk *sockets.Socket) int {
	want, err := netip.ParseAddr(sk.Host())
	if err != nil {
		return -1
	}
	want = want.Unmap()
	is := func(fd int) bool {
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT); err != nil || v == 0 {
			return false
		}
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != 0 {
			return false
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return false
		}
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			return sa.Port == sk.Port() && netip.AddrFrom4(sa.Addr) == want
		case *unix.SockaddrInet6:
			return sa.Port == sk.Port() && netip.AddrFrom16(sa.Addr).Unmap() == want
		}
		return false
	}
	if fd, ok := s.reserved[sk]; ok && is(fd) {
		return fd
	}
	delete(s.reserved, sk)
	names, err := readDirNames("/proc/self/fd")
	if err != nil {
		return -1
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		link, err := os.Readlink("/proc/self/fd/" + n)
		if err != nil || !strings.HasPrefix(link, "socket:") {
			continue
		}
		if is(fd) {
			s.reserved[sk] = fd
			return fd
		}
	}
	return -1
}
