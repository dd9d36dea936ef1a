package handover

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests here share the process-wide table, so none runs in parallel.

// resetTable empties the table for one test and again after it.
func resetTable(t *testing.T) {
	t.Helper()
	clearTable := func() {
		table.mu.Lock()
		defer table.mu.Unlock()
		table.inherited, table.taken, table.open = nil, nil, nil
	}
	clearTable()
	t.Cleanup(clearTable)
}

// handedOver returns a duplicate of ln's fd, as the image before this one
// would have left it, and closes ln (without unlinking a unix path: an
// exec runs no Close).
func handedOver(t *testing.T, ln net.Listener) int {
	t.Helper()
	var fd int
	var derr error
	if err := control(ln, func(f int) { fd, derr = unix.Dup(f) }); err != nil || derr != nil {
		t.Fatalf("dup %v: %v %v", ln.Addr(), err, derr)
	}
	if ul, ok := ln.(*net.UnixListener); ok {
		ul.SetUnlinkOnClose(false)
	}
	ln.Close()
	// No Cleanup closes fd: once Listen took it, its number may name
	// another fd. The tests close what Listen refused.
	return fd
}

// isOpen reports whether fd is an open descriptor.
func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// cloexec returns fd's close-on-exec flag.
func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %d: %v", fd, err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// A listener taken from an inherited fd accepts the connection that was
// waiting in its backlog since before the hand-over, reports the address
// it was bound to, and (unix) removes its path on Close.
func TestListenInherited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "l.sock")
	for _, tc := range []struct{ network, address string }{
		{"tcp", "127.0.0.1:0"},
		{"unix", path},
	} {
		t.Run(tc.network, func(t *testing.T) {
			resetTable(t)
			old, err := net.Listen(tc.network, tc.address)
			if err != nil {
				t.Fatal(err)
			}
			addr := old.Addr().String()
			client, err := net.DialTimeout(tc.network, addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			fd := handedOver(t, old)
			key := "test " + tc.address
			Inherit(map[string]int{key: fd})
			if !cloexec(t, fd) {
				t.Errorf("after Inherit, fd %d is not close-on-exec", fd)
			}
			if !Inherited(key) {
				t.Errorf("Inherited(%q) = false, want true", key)
			}

			ln, err := Listen(key, tc.network, tc.address)
			if err != nil {
				t.Fatalf("Listen(%q) = %v", key, err)
			}
			if ln.Addr().String() != addr {
				t.Errorf("Addr() = %s, want %s", ln.Addr(), addr)
			}
			if isOpen(fd) {
				t.Errorf("fd %d still open: the listener should hold its own duplicate", fd)
			}
			if Inherited(key) {
				t.Errorf("Inherited(%q) = true after Listen took it", key)
			}
			if u := Unclaimed(); len(u) != 0 {
				t.Errorf("Unclaimed() = %v, want none", u)
			}
			if _, err := client.Write([]byte("before")); err != nil {
				t.Fatal(err)
			}
			c, err := ln.Accept()
			if err != nil {
				t.Fatalf("Accept = %v", err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 6)
			if _, err := c.Read(buf); err != nil || string(buf) != "before" {
				t.Errorf("read %q, %v, want %q", buf, err, "before")
			}
			c.Close()
			if err := ln.Close(); err != nil {
				t.Errorf("Close = %v", err)
			}
			if tc.network == "unix" {
				if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after Close, Lstat(%s) = %v, want it removed", path, err)
				}
			}
		})
	}
}

// Without an inherited table, Listen binds; the table does not change
// what a key that was never handed over gets.
func TestListenFresh(t *testing.T) {
	resetTable(t)
	Inherit(map[string]int{})
	ln, err := Listen("test fresh", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if ln.Addr().(*net.TCPAddr).Port == 0 {
		t.Errorf("Addr() = %s, want a bound port", ln.Addr())
	}
}

// An fd that is not what the key says is refused, naming the key, and is
// left open (the test closes it); the key cannot be taken again.
func TestListenInheritedErrors(t *testing.T) {
	dir := t.TempDir()
	listener := func(network, address string) func(t *testing.T) int {
		return func(t *testing.T) int {
			ln, err := net.Listen(network, address)
			if err != nil {
				t.Fatal(err)
			}
			return handedOver(t, ln)
		}
	}
	socket := func(typ int) func(t *testing.T) int {
		return func(t *testing.T) int {
			fd, err := unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			return fd
		}
	}
	tcp := listener("tcp", "127.0.0.1:0")
	for _, tc := range []struct {
		name             string
		fd               func(t *testing.T) int
		network, address string
		want             string
	}{
		{"wrong family", listener("unix", filepath.Join(dir, "u.sock")), "tcp", "127.0.0.1:0",
			"a AF_UNIX SOCK_STREAM socket, not a tcp listener"},
		{"tcp6 for tcp4", tcp, "tcp6", "[::1]:0", "a AF_INET SOCK_STREAM socket, not a tcp6 listener"},
		{"not a socket", pipe, "tcp", "127.0.0.1:0", "not a socket"},
		{"closed fd", closedFD, "tcp", "127.0.0.1:0", "fstat: bad file descriptor"},
		{"does not listen", socket(unix.SOCK_STREAM), "tcp", "127.0.0.1:0", "a tcp socket that does not listen"},
		{"datagram", socket(unix.SOCK_DGRAM), "tcp", "127.0.0.1:0", "a AF_INET SOCK_DGRAM socket, not a tcp listener"},
		{"other port", tcp, "tcp", "127.0.0.1:1", "bound to port "},
		{"other path", listener("unix", filepath.Join(dir, "a.sock")), "unix", filepath.Join(dir, "b.sock"),
			`bound to "` + filepath.Join(dir, "a.sock") + `", not`},
		{"network", tcp, "udp", "127.0.0.1:0", `network "udp" cannot be inherited`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resetTable(t)
			fd := tc.fd(t)
			key := "test " + tc.name
			Inherit(map[string]int{key: fd})
			ln, err := Listen(key, tc.network, tc.address)
			if err == nil {
				ln.Close()
				t.Fatalf("Listen(%q) succeeded, want %q", key, tc.want)
			}
			prefix := `inherited listener "` + key + `" (fd ` + strconv.Itoa(fd) + `): `
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Listen(%q) = %v, want %s...%s", key, err, prefix, tc.want)
			}
			if tc.name != "closed fd" {
				if !isOpen(fd) {
					t.Errorf("fd %d was closed: a refused fd must be left alone", fd)
				}
				unix.Close(fd)
			}
			_, err = Listen(key, tc.network, tc.address)
			if want := `inherited listener "` + key + `": taken twice`; err == nil || err.Error() != want {
				t.Errorf("second Listen(%q) = %v, want %s", key, err, want)
			}
		})
	}
}

// pipe returns the read end of a pipe whose write end is closed.
func pipe(t *testing.T) int {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[1])
	return p[0]
}

// closedFD returns a number that names no open fd.
func closedFD(*testing.T) int {
	fd := 1000
	for isOpen(fd) {
		fd++
	}
	return fd
}

// Listeners clears close-on-exec on every open listener and names it by
// key; ListenersBack sets it again; a closed listener is no longer
// registered.
func TestListeners(t *testing.T) {
	resetTable(t)
	a, err := Listen("test a", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Listen("test b", "unix", filepath.Join(t.TempDir(), "b.sock"))
	if err != nil {
		t.Fatal(err)
	}
	fds, err := Listeners()
	if err != nil {
		t.Fatalf("Listeners() = %v", err)
	}
	if len(fds) != 2 {
		t.Fatalf("Listeners() = %v, want keys test a and test b", fds)
	}
	for key, ln := range map[string]net.Listener{"test a": a, "test b": b} {
		var fd int
		control(ln, func(f int) { fd = f })
		if fds[key] != fd {
			t.Errorf("Listeners()[%q] = %d, want %d", key, fds[key], fd)
		}
		if cloexec(t, fd) {
			t.Errorf("after Listeners(), %s fd %d is close-on-exec", key, fd)
		}
	}
	ListenersBack()
	for key, fd := range fds {
		if !cloexec(t, fd) {
			t.Errorf("after ListenersBack(), %s fd %d is not close-on-exec", key, fd)
		}
	}
	ListenersBack()

	b.Close()
	fds, err = Listeners()
	if err != nil || len(fds) != 1 || fds["test a"] == 0 {
		t.Errorf("after closing b, Listeners() = %v, %v, want only test a", fds, err)
	}
	ListenersBack()
}

// Two open listeners under one key cannot be handed over: the next image
// could not tell them apart. Nothing is left inheritable.
func TestListenersSameKey(t *testing.T) {
	resetTable(t)
	var lns []net.Listener
	for range 2 {
		ln, err := Listen("test same", "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		lns = append(lns, ln)
	}
	fds, err := Listeners()
	if want := `hand over listener "test same": two listeners have this key`; err == nil || err.Error() != want {
		t.Fatalf("Listeners() = %v, %v, want %s", fds, err, want)
	}
	for _, ln := range lns {
		control(ln, func(fd int) {
			if !cloexec(t, fd) {
				t.Errorf("fd %d left without close-on-exec after a refused Listeners", fd)
			}
		})
	}
}

// Unclaimed returns what no Listen took, once.
func TestUnclaimed(t *testing.T) {
	resetTable(t)
	var fds []int
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		fds = append(fds, handedOver(t, ln))
	}
	Inherit(map[string]int{"test taken": fds[0], "test left": fds[1]})
	ln, err := Listen("test taken", "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if u := Unclaimed(); len(u) != 1 || u["test left"] != fds[1] {
		t.Errorf("Unclaimed() = %v, want test left: %d", u, fds[1])
	}
	unix.Close(fds[1])
	if u := Unclaimed(); len(u) != 0 {
		t.Errorf("second Unclaimed() = %v, want none", u)
	}
	if Inherited("test left") {
		t.Errorf("Inherited(test left) = true after Unclaimed")
	}
}
