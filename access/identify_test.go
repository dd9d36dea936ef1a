package access

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
)

const nobody = 65534

// accept listens on network/addr, has a client run as nobody connect, and
// returns the server's side of that connection and the client's pid.
func acceptFromNobody(t *testing.T, network, addr string) (net.Conn, int) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	defer ln.Close()
	target := ln.Addr().String()
	if network == "unix" {
		os.Chmod(addr, 0o777)
	}
	pid := dialAs(t, nobody, nobody, network, target)
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, pid
}

// The uid of a loopback tcp client is the kernel's word, whichever family.
func TestIdentifyTCP(t *testing.T) {
	for _, tc := range []struct{ name, network, listen, dial string }{
		{"v4", "tcp4", "127.0.0.1:0", ""},
		{"v6", "tcp6", "[::1]:0", ""},
		// A v4 client of a dual-stack listener: the server sees
		// ::ffff:127.0.0.1, the client's own socket is AF_INET.
		{"dual-stack", "tcp", "[::]:0", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen(tc.network, tc.listen)
			if err != nil {
				t.Skipf("listen: %v", err)
			}
			defer ln.Close()
			addr := ln.Addr().String()
			if tc.dial != "" {
				_, port, _ := net.SplitHostPort(addr)
				addr = net.JoinHostPort(tc.dial, port)
			}
			dialAs(t, nobody, nobody, "tcp", addr)
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			p := Identify(c)
			if p.Origin != Local || p.UID != nobody || p.GID != -1 || p.PID != 0 {
				t.Errorf("Identify = %+v, want a Local peer with uid %d (gid -1, pid 0)", p, nobody)
			}

			// And root's own connection is root's.
			rc, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			sc, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer sc.Close()
			if p := Identify(sc); p.Origin != Local || p.UID != os.Geteuid() {
				t.Errorf("Identify of our own connection = %+v, want uid %d", p, os.Geteuid())
			}
		})
	}
}

// A unix socket peer comes with its uid, gid and pid.
func TestIdentifyUnix(t *testing.T) {
	// Not t.TempDir: its parent is 0700, and the client runs as nobody.
	dir, err := os.MkdirTemp("", "access-unix-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "s")
	c, pid := acceptFromNobody(t, "unix", path)
	p := Identify(c)
	if p.Origin != Local || p.UID != nobody || p.GID != nobody || p.PID != pid {
		t.Errorf("Identify = %+v, want uid %d gid %d pid %d", p, nobody, nobody, pid)
	}
	if p.Addr != "ipc" {
		t.Errorf("Addr = %q, want ipc", p.Addr)
	}
}

// A client that closed its socket before it was identified is nobody:
// its orphaned socket, or the time-wait one that replaces it (which
// sock_diag reports as uid 0), must vouch for no one.
func TestIdentifyClosedPeer(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cc, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cc.Close()
	// The client's FIN reaching us is what makes its socket an orphan.
	if n, err := sc.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("read after the client closed: %d, %v", n, err)
	}
	if p := Identify(sc); p.Origin == Local {
		t.Errorf("Identify of a closed peer = %+v, want it unidentified", p)
	}
}

// A 4-tuple no socket of this host has is not found: such a peer would
// be Remote.
func TestDiagNoSocket(t *testing.T) {
	src := netip.MustParseAddrPort("127.0.0.1:1")
	dst := netip.MustParseAddrPort("127.0.0.1:2")
	if _, err := tcpOwner(src, dst); err != errNoSocket {
		t.Errorf("tcpOwner of nothing = %v, want errNoSocket", err)
	}
}

// A connection that is neither tcp nor unix is Unknown, with the reason.
func TestIdentifyPipe(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if p := Identify(a); p.Origin != Unknown || p.Why == "" {
		t.Errorf("Identify(pipe) = %+v, want Unknown with a reason", p)
	}
}
