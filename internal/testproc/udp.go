package testproc

import (
	"errors"
	"math/rand/v2"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// UDPSink keeps every datagram that arrives on its socket, as a statsd or
// syslog daemon receives them: a UDP listener on a free loopback port
// (NewUDPSink) or a unix datagram socket (NewUnixgramSink). It is closed
// when the test ends.
type UDPSink struct {
	Port int    // the UDP port; 0 for a unix socket
	Path string // the unix socket's path; "" for UDP
	mu   sync.Mutex
	got  []string
}

// NewUDPSink starts a UDPSink on a free loopback port.
func NewUDPSink(t testing.TB) *UDPSink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPSink{Port: conn.LocalAddr().(*net.UDPAddr).Port}
	s.keep(t, conn)
	return s
}

// NewUnixgramSink starts a UDPSink on a unix datagram socket bound at
// path, as a local syslog daemon's /dev/log.
func NewUnixgramSink(t testing.TB, path string) *UDPSink {
	t.Helper()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	s := &UDPSink{Path: path}
	s.keep(t, conn)
	return s
}

// keep reads conn's datagrams into s until the test's end closes it.
func (s *UDPSink) keep(t testing.TB, conn net.PacketConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
}

// Packets returns every datagram so far.
func (s *UDPSink) Packets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// Count returns how many datagrams were exactly p.
func (s *UDPSink) Count(p string) int {
	n := 0
	for _, g := range s.Packets() {
		if g == p {
			n++
		}
	}
	return n
}

// Matching returns the datagrams re matches.
func (s *UDPSink) Matching(re string) []string {
	r := regexp.MustCompile(re)
	var out []string
	for _, g := range s.Packets() {
		if r.MatchString(g) {
			out = append(out, g)
		}
	}
	return out
}

// WaitPacket waits, at most d, until datagram p arrived at least n times.
func (s *UDPSink) WaitPacket(t testing.TB, p string, n int, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); s.Count(p) < n; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after %s, %d× %q, want %d; every packet:\n%s", d, s.Count(p), p, n, strings.Join(s.Packets(), "\n"))
		}
	}
}

// FreeUDPPort is FreePort for UDP: a loopback port below the ephemeral
// range, where no parallel test's socket can take it meanwhile.
func FreeUDPPort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.N(12000)
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free UDP port found in 20000-31999")
	return 0
}
