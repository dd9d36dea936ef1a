package sockets

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cloexec returns fd's close-on-exec flag.
func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("F_GETFD %d: %v", fd, err)
	}
	return flags&unix.FD_CLOEXEC != 0
}

// isOpen reports whether fd is an open descriptor.
func isOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// execInProcess plays an exec for s within this process: its State goes
// through JSON, its fd is duplicated (as if it had crossed the exec) and
// the old Socket lets go of its copy without Close, which an exec does
// not run: nothing is unlinked.
func execInProcess(t *testing.T, s *Socket) State {
	t.Helper()
	st, err := s.Handover()
	if err != nil {
		t.Fatalf("Handover() = %v", err)
	}
	if cloexec(t, st.FD) {
		t.Errorf("after Handover(), fd %d is still close-on-exec", st.FD)
	}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.FD, err = unix.Dup(st.FD); err != nil {
		t.Fatal(err)
	}
	s.closeOnce.Do(func() {})
	s.closed.Store(true)
	s.file.Close()
	return back
}

// mustAdopt adopts st and closes the Socket when the test ends.
func mustAdopt(t *testing.T, st State) *Socket {
	t.Helper()
	s, err := Adopt(st)
	if err != nil {
		t.Fatalf("Adopt(%+v) = %v", st, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// An adopted socket is the one Bind made: same address, same fd, queue
// readable, handed to a worker that answers on it, and a connection
// waiting in its backlog since before the hand-over is answered.
func TestAdopt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	specs := []Spec{tcp4("tcp4"), unixSpec("unix", filepath.Join(dir, "u.sock")),
		unixSpec("abstract", fmt.Sprintf("@ringmaster-adopt-%d", os.Getpid()))}
	blocking := tcp4("blocking")
	blocking.Blocking = true
	reuse := tcp4("reuse")
	reuse.ReusePort = true
	specs = append(specs, blocking, reuse)
	if haveIPv6() {
		v6 := tcp4("tcp6")
		v6.Host, v6.Family = "::1", "AF_INET6"
		specs = append(specs, v6)
	}
	for _, spec := range specs {
		t.Run(spec.Name, func(t *testing.T) {
			t.Parallel()
			old := mustBind(t, spec)
			network := "tcp"
			if spec.Path != "" {
				network = "unix"
			}
			var early net.Conn
			if !spec.ReusePort {
				var err error
				if early, err = net.DialTimeout(network, old.Addr(), 5*time.Second); err != nil {
					t.Fatal(err)
				}
				defer early.Close()
			}
			st := execInProcess(t, old)
			s := mustAdopt(t, st)
			if s.Addr() != old.Addr() || s.Host() != old.Host() || s.Port() != old.Port() || s.Spec() != spec {
				t.Errorf("adopted %s %s:%d %+v, want %s %s:%d %+v", s.Addr(), s.Host(), s.Port(), s.Spec(), old.Addr(), old.Host(), old.Port(), spec)
			}
			if s.FD() != st.FD || !cloexec(t, st.FD) {
				t.Errorf("FD() = %d (close-on-exec %v), want %d, close-on-exec", s.FD(), cloexec(t, st.FD), st.FD)
			}
			if early != nil {
				var r QueueReader
				q := r.Read(nil, []*Socket{s})
				r.Close()
				if q[0].Err != nil || q[0].Len != 1 {
					t.Errorf("queue = %+v, want the one connection waiting", q[0])
				}
			}
			h := mustPrepare(t, s)
			cmd := startHelper(t, "serve", h.Files)
			h.Close()
			want := fmt.Sprintf("pid %d", cmd.Process.Pid)
			if early != nil {
				early.SetReadDeadline(time.Now().Add(5 * time.Second))
				line, err := bufio.NewReader(early).ReadString('\n')
				if strings.TrimSpace(line) != want {
					t.Errorf("connection made before the hand-over read %q, %v, want %q", line, err, want)
				}
			}
			if got := askPid(t, network, s.Addr()); got != want {
				t.Errorf("answer on %s = %q, want %q", s.Addr(), got, want)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
			if spec.Path != "" && spec.Path[0] != '@' {
				if _, err := os.Lstat(spec.Path); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("after Close, Lstat(%s) = %v, want it removed", spec.Path, err)
				}
			}
		})
	}
}

// A UDP socket keeps the datagrams that arrived during the hand-over.
func TestAdoptUDP(t *testing.T) {
	t.Parallel()
	spec := tcp4("udp")
	spec.Type, spec.Proto = "SOCK_DGRAM", "udp"
	old := mustBind(t, spec)
	c, err := net.Dial("udp", old.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("during")); err != nil {
		t.Fatal(err)
	}
	s := mustAdopt(t, execInProcess(t, old))
	err = s.Control(func(fd int) {
		buf := make([]byte, 16)
		// The socket is non-blocking: the datagram must already be there.
		n, _, rerr := unix.Recvfrom(fd, buf, 0)
		if rerr != nil || string(buf[:n]) != "during" {
			t.Errorf("recvfrom = %q, %v, want %q", buf[:n], rerr, "during")
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Handover fails on a closed socket; HandoverBack makes the fd
// close-on-exec again.
func TestHandoverBack(t *testing.T) {
	t.Parallel()
	s := mustBind(t, tcp4("back"))
	st, err := s.Handover()
	if err != nil {
		t.Fatal(err)
	}
	s.HandoverBack()
	if !cloexec(t, st.FD) {
		t.Errorf("after HandoverBack(), fd %d is not close-on-exec", st.FD)
	}
	s.Close()
	if _, err := s.Handover(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Handover() of a closed socket = %v, want net.ErrClosed", err)
	}
	s.HandoverBack() // no fd: nothing to do, no panic
}

// An fd that is not what the State says is refused, naming the socket and
// the fd, and left open.
func TestAdoptErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range adoptErrors(t.TempDir()) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			st := tc.state(t)
			s, err := Adopt(st)
			if err == nil {
				s.Close()
				t.Fatalf("Adopt(%+v) succeeded, want %q", st, tc.want)
			}
			prefix := `adopt socket "tcp4" (fd ` + strconv.Itoa(st.FD) + `): `
			if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Adopt = %v, want %s...%s", err, prefix, tc.want)
			}
			if st.FD > 2 && tc.name != "closed fd" && !isOpen(st.FD) {
				t.Errorf("fd %d was closed: a refused fd must be left alone", st.FD)
			}
		})
	}
}

// adoptError is a State that Adopt must refuse, with the reason it gives.
type adoptError struct {
	name  string
	state func(t *testing.T) State
	want  string
}

// adoptErrors are TestAdoptErrors's cases, with unix paths in dir.
func adoptErrors(dir string) []adoptError {
	// handed returns the State of a new socket bound from spec, as the
	// image before would have handed it over.
	handed := func(t *testing.T, spec Spec) State {
		st := execInProcess(t, mustBind(t, spec))
		t.Cleanup(func() { unix.Close(st.FD) })
		return st
	}
	reuse := tcp4("tcp4")
	reuse.ReusePort = true
	return []adoptError{
		{"wrong family", func(t *testing.T) State {
			st := handed(t, unixSpec("tcp4", filepath.Join(dir, "f.sock")))
			st.Spec = tcp4("tcp4")
			return st
		}, "a AF_UNIX SOCK_STREAM socket, want AF_INET SOCK_STREAM"},
		{"wrong type", func(t *testing.T) State {
			spec := tcp4("tcp4")
			spec.Type = "SOCK_DGRAM"
			st := handed(t, spec)
			st.Spec = tcp4("tcp4")
			return st
		}, "a AF_INET SOCK_DGRAM socket, want AF_INET SOCK_STREAM"},
		{"not a socket", func(t *testing.T) State {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
			return State{Spec: tcp4("tcp4"), FD: p[0]}
		}, "not a socket"},
		{"closed fd", func(t *testing.T) State {
			fd := 1000
			for isOpen(fd) {
				fd++
			}
			return State{Spec: tcp4("tcp4"), FD: fd}
		}, "fstat: bad file descriptor"},
		{"stdin", func(t *testing.T) State { return State{Spec: tcp4("tcp4"), FD: 0} }, "not a descriptor a hand-over passes"},
		{"listens with reuseport", func(t *testing.T) State {
			st := handed(t, tcp4("tcp4"))
			st.Spec = reuse
			return st
		}, "listens, and should not"},
		{"does not listen", func(t *testing.T) State {
			st := handed(t, reuse)
			st.Spec = tcp4("tcp4")
			return st
		}, "does not listen"},
		{"blocking", func(t *testing.T) State {
			st := handed(t, tcp4("tcp4"))
			st.Spec.Blocking = true
			return st
		}, "non-blocking is true, the spec's blocking is true"},
		{"other port", func(t *testing.T) State {
			st := handed(t, tcp4("tcp4"))
			st.Port++
			return st
		}, "bound to 127.0.0.1:"},
		{"other abstract name", func(t *testing.T) State {
			st := handed(t, unixSpec("tcp4", fmt.Sprintf("@ringmaster-adopt-a-%d", os.Getpid())))
			st.Spec.Path += "-b"
			return st
		}, "bound to \"@ringmaster-adopt-a-"},
		{"abstract for a path", func(t *testing.T) State {
			st := handed(t, unixSpec("tcp4", fmt.Sprintf("@ringmaster-adopt-c-%d", os.Getpid())))
			st.Spec.Path = filepath.Join(dir, "c.sock")
			return st
		}, "not to a path"},
		{"bad spec", func(t *testing.T) State {
			st := handed(t, tcp4("tcp4"))
			st.Spec.Type = "SOCK_BAD"
			return st
		}, `type "SOCK_BAD"`},
	}
}
