package sockets

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestBindIPv4(t *testing.T) {
	t.Parallel()
	for _, host := range []string{"127.0.0.1", "localhost"} {
		t.Run(host, func(t *testing.T) {
			t.Parallel()
			spec := tcp4("web")
			spec.Host = host
			s := mustBind(t, spec)
			if s.Host() != "127.0.0.1" {
				t.Errorf("Host() = %q, want 127.0.0.1", s.Host())
			}
			if s.Port() == 0 {
				t.Errorf("Port() = 0, want the kernel's port")
			}
			if want := "127.0.0.1:" + strconv.Itoa(s.Port()); s.Addr() != want {
				t.Errorf("Addr() = %q, want %q", s.Addr(), want)
			}
			if s.Name() != "web" || s.Spec() != spec {
				t.Errorf("Name(), Spec() = %q, %+v, want web, %+v", s.Name(), s.Spec(), spec)
			}

			h := mustPrepare(t, s)
			cmd := startHelper(t, "serve", h.Files)
			h.Close()
			want := fmt.Sprintf("pid %d", cmd.Process.Pid)
			for range 3 {
				if got := askPid(t, "tcp", s.Addr()); got != want {
					t.Fatalf("answer on %s = %q, want %q", s.Addr(), got, want)
				}
			}
		})
	}
}

func TestBindIPv6(t *testing.T) {
	t.Parallel()
	if !haveIPv6() {
		t.Skip("no IPv6 in this kernel: cannot bind ::1")
	}
	tests := []struct {
		host, wantHost string
	}{
		{"::1", "::1"},
		{"[::1]", "::1"},
		{"localhost", "::1"},
		{"::", "::"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			t.Parallel()
			spec := tcp4("v6")
			spec.Host, spec.Family = tt.host, "AF_INET6"
			s := mustBind(t, spec)
			if s.Host() != tt.wantHost {
				t.Errorf("Host() = %q, want %q", s.Host(), tt.wantHost)
			}
			if want := "[" + tt.wantHost + "]:" + strconv.Itoa(s.Port()); s.Addr() != want {
				t.Errorf("Addr() = %q, want %q", s.Addr(), want)
			}
			// The kernel completes the handshake into the backlog: a
			// successful dial proves the socket listens.
			c, err := net.DialTimeout("tcp6", net.JoinHostPort("::1", strconv.Itoa(s.Port())), 5*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", s.Addr(), err)
			}
			c.Close()
		})
	}
}

func TestUDP(t *testing.T) {
	t.Parallel()
	spec := tcp4("dns")
	spec.Type, spec.Proto = "SOCK_DGRAM", "udp"
	s := mustBind(t, spec)
	h := mustPrepare(t, s)
	cmd := startHelper(t, "udpecho", h.Files)

	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	want := fmt.Sprintf("pid %d", cmd.Process.Pid)
	buf := make([]byte, 64)
	// Datagrams may be lost: resend until an answer comes or time is up.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatalf("write to %s: %v", s.Addr(), err)
		}
		c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		n, err := c.Read(buf)
		if err != nil {
			continue
		}
		if got := string(buf[:n]); got != want {
			t.Fatalf("answer on %s = %q, want %q", s.Addr(), got, want)
		}
		return
	}
	t.Fatalf("no answer on %s before the deadline", s.Addr())
}

func TestAddrInUse(t *testing.T) {
	t.Parallel()
	first := mustBind(t, tcp4("first"))
	spec := tcp4("web")
	spec.Port = first.Port()
	s, err := Bind(spec)
	if err == nil {
		s.Close()
		t.Fatalf("Bind(port %d) twice succeeded", spec.Port)
	}
	want := fmt.Sprintf(`bind socket "web" 127.0.0.1:%d: address already in use`, spec.Port)
	if err.Error() != want {
		t.Errorf("Bind error = %q, want %q", err, want)
	}
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("errors.Is(%v, EADDRINUSE) = false, want true", err)
	}
}

func TestBlocking(t *testing.T) {
	t.Parallel()
	for _, blocking := range []bool{false, true} {
		t.Run(fmt.Sprintf("blocking=%v", blocking), func(t *testing.T) {
			t.Parallel()
			spec := tcp4("web")
			spec.Blocking = blocking
			s := mustBind(t, spec)
			h := mustPrepare(t, s)
			r := describeChild(t, h.Files)
			i := slices.IndexFunc(r.FDs, func(f fdInfo) bool { return f.FD == 3 })
			if i < 0 || !strings.HasPrefix(r.FDs[i].Target, "socket:") {
				t.Fatalf("child fds = %+v, want a socket at fd 3", r.FDs)
			}
			if r.FDs[i].NonBlock == blocking {
				t.Errorf("child fd 3 O_NONBLOCK = %v, want %v", r.FDs[i].NonBlock, !blocking)
			}
		})
	}
}

func TestChildFDs(t *testing.T) {
	t.Parallel()
	s := mustBind(t, tcp4("web"))
	h := mustPrepare(t, s)
	r := describeChild(t, h.Files, h.Env...)
	var got []int
	for _, f := range userFDs(r) {
		got = append(got, f.FD)
	}
	if fmt.Sprint(got) != "[0 1 2 3]" {
		t.Errorf("child fds = %v (%+v), want [0 1 2 3]", got, r.FDs)
	}
	if r.Env["LISTEN_FDS"] != "1" || r.Env["LISTEN_FDNAMES"] != "web" {
		t.Errorf("child LISTEN_* = %v, want LISTEN_FDS=1 LISTEN_FDNAMES=web", r.Env)
	}
}

func TestInterface(t *testing.T) {
	t.Parallel()
	spec := tcp4("web")
	spec.Interface = "lo"
	s, err := Bind(spec)
	if errors.Is(err, unix.EPERM) {
		t.Skipf("SO_BINDTODEVICE needs privileges: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rc, err := s.file.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dev string
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		dev, gerr = unix.GetsockoptString(int(fd), unix.SOL_SOCKET, unix.SO_BINDTODEVICE)
	}); err != nil {
		t.Fatal(err)
	}
	if gerr != nil || dev != "lo" {
		t.Errorf("SO_BINDTODEVICE = %q, %v, want lo", dev, gerr)
	}
	c, err := net.DialTimeout("tcp", s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", s.Addr(), err)
	}
	c.Close()

	spec.Interface = "no-such-if0"
	if s, err := Bind(spec); err == nil {
		s.Close()
		t.Errorf("Bind(interface %q) succeeded, want an error", spec.Interface)
	} else if !strings.Contains(err.Error(), `"no-such-if0"`) {
		t.Errorf("Bind(interface %q) = %v, want the interface named", spec.Interface, err)
	}
}

func TestBindErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name string
		spec Spec
		want string
	}{
		{"family", Spec{Name: "a", Family: "AF_IPX"}, `bind socket "a": family "AF_IPX"`},
		{"unix without path", Spec{Name: "a", Family: "AF_UNIX"}, `bind socket "a": family AF_UNIX needs a path`},
		{"type", Spec{Name: "a", Type: "SOCK_FOO"}, `bind socket "a": type "SOCK_FOO"`},
		{"proto", Spec{Name: "a", Proto: "carrier-pigeon"}, `bind socket "a": proto "carrier-pigeon"`},
		{"v6 host on AF_INET", Spec{Name: "a", Host: "::1", Family: "AF_INET"}, `bind socket "a" [::1]:0: host "::1" is an IPv6 address`},
		{"unix reuseport", Spec{Name: "a", Path: filepath.Join(dir, "s"), ReusePort: true}, "so_reuseport applies to TCP and UDP"},
		{"colon in name", Spec{Name: "a:b", Host: "127.0.0.1"}, `name must not contain ':'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Bind(tt.spec)
			if err == nil {
				s.Close()
				t.Fatalf("Bind(%+v) succeeded, want error containing %q", tt.spec, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Bind(%+v) = %q, want it to contain %q", tt.spec, err, tt.want)
			}
		})
	}
}

func TestParseProto(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
	}{{"", 0}, {"tcp", 6}, {"UDP", 17}, {"6", 6}, {"132", 132}}
	for _, tt := range tests {
		if got, err := parseProto(tt.in); got != tt.want || err != nil {
			t.Errorf("parseProto(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
}

func TestBindAll(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "first.sock")
	t.Run("failure closes", func(t *testing.T) {
		socks, err := BindAll([]Spec{{Name: "first", Path: path, Umask: -1}, {Name: "bad", Type: "SOCK_FOO"}})
		if err == nil {
			for _, s := range socks {
				s.Close()
			}
			t.Fatal("BindAll succeeded, want the error of socket bad")
		}
		if !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("BindAll error = %q, want it to name socket bad", err)
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); !errors.Is(err, unix.ENOENT) {
			t.Errorf("after a failed BindAll, lstat %s = %v, want ENOENT (closed and unlinked)", path, err)
		}
	})
	t.Run("duplicate", func(t *testing.T) {
		socks, err := BindAll([]Spec{tcp4("web"), tcp4("web")})
		if err == nil {
			for _, s := range socks {
				s.Close()
			}
			t.Fatal("BindAll with a name twice succeeded")
		}
	})
	t.Run("ok", func(t *testing.T) {
		socks, err := BindAll([]Spec{tcp4("a"), tcp4("b")})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range socks {
			if want := []string{"a", "b"}[i]; s.Name() != want {
				t.Errorf("socks[%d].Name() = %q, want %q", i, s.Name(), want)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close() = %v", err)
			}
		}
	})
}
