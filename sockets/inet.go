package sockets

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// resolveTimeout bounds the lookup of a host name at Bind.
const resolveTimeout = 10 * time.Second

// parseFamily returns the address family of spec: AF_UNIX whenever Path is
// set (as in Circus), else Family, AF_INET if empty.
func parseFamily(spec Spec) (int, error) {
	if spec.Path != "" {
		return unix.AF_UNIX, nil
	}
	switch strings.ToUpper(spec.Family) {
	case "", "AF_INET":
		return unix.AF_INET, nil
	case "AF_INET6":
		return unix.AF_INET6, nil
	case "AF_UNIX":
		return 0, fmt.Errorf("family AF_UNIX needs a path")
	}
	return 0, fmt.Errorf("family %q: want AF_INET, AF_INET6 or AF_UNIX", spec.Family)
}

// parseType maps a Circus socket type name to its constant; "" is
// SOCK_STREAM.
func parseType(name string) (int, error) {
	switch strings.ToUpper(name) {
	case "", "SOCK_STREAM":
		return unix.SOCK_STREAM, nil
	case "SOCK_DGRAM":
		return unix.SOCK_DGRAM, nil
	case "SOCK_SEQPACKET":
		return unix.SOCK_SEQPACKET, nil
	case "SOCK_RAW":
		return unix.SOCK_RAW, nil
	case "SOCK_RDM":
		return unix.SOCK_RDM, nil
	}
	return 0, fmt.Errorf("type %q: want SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW or SOCK_RDM", name)
}

// protocols holds the names getprotobyname knows on any Linux system.
var protocols = map[string]int{
	"ip": 0, "icmp": 1, "igmp": 2, "tcp": 6, "udp": 17, "ipv6": 41,
	"gre": 47, "esp": 50, "ah": 51, "ipv6-icmp": 58, "icmpv6": 58,
	"sctp": 132, "udplite": 136, "raw": 255,
}

// parseProto maps a protocol name or number to its number; "" is 0, the
// kernel's default for the family and type.
func parseProto(name string) (int, error) {
	if name == "" {
		return 0, nil
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n <= 255 {
		return n, nil
	}
	if n, ok := protocols[strings.ToLower(name)]; ok {
		return n, nil
	}
	return 0, fmt.Errorf("proto %q: unknown protocol (want tcp, udp or a number)", name)
}

// resolve turns spec.Host into an address of the given family: "localhost"
// is the loopback address, "" the wildcard (as Python's bind), literals are
// taken as they are, and other names are looked up, the first address of
// the family winning.
func resolve(host string, family int) (netip.Addr, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	v6 := family == unix.AF_INET6
	switch strings.ToLower(host) {
	case "":
		if v6 {
			return netip.IPv6Unspecified(), nil
		}
		return netip.IPv4Unspecified(), nil
	case "localhost":
		if v6 {
			return netip.IPv6Loopback(), nil
		}
		return netip.AddrFrom4([4]byte{127, 0, 0, 1}), nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		switch {
		case v6 && a.Is4():
			return netip.AddrFrom16(a.As16()), nil // v4-mapped
		case !v6 && a.Is4In6():
			return a.Unmap(), nil
		case !v6 && a.Is6():
			return netip.Addr{}, fmt.Errorf("host %q is an IPv6 address: set family = AF_INET6", host)
		}
		return a, nil
	}
	network := "ip4"
	if v6 {
		network = "ip6"
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, network, host)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("resolve %q: %w", host, err)
	}
	if len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("resolve %q: no %s address", host, network)
	}
	if v6 {
		return addrs[0], nil
	}
	return addrs[0].Unmap(), nil
}

// sockaddr builds the bind address for a and port.
func sockaddr(a netip.Addr, port int) (unix.Sockaddr, error) {
	if a.Is4() {
		return &unix.SockaddrInet4{Port: port, Addr: a.As4()}, nil
	}
	sa := &unix.SockaddrInet6{Port: port, Addr: a.As16()}
	if zone := a.Zone(); zone != "" {
		if n, err := strconv.Atoi(zone); err == nil {
			sa.ZoneId = uint32(n)
		} else {
			ifi, err := net.InterfaceByName(zone)
			if err != nil {
				return nil, fmt.Errorf("zone %q: %w", zone, err)
			}
			sa.ZoneId = uint32(ifi.Index)
		}
	}
	return sa, nil
}

// bindInet binds a TCP or UDP socket (or another inet type) and reads back
// the real address.
func (s *Socket) bindInet() error {
	requested := net.JoinHostPort(s.spec.Host, strconv.Itoa(s.spec.Port))
	a, err := resolve(s.spec.Host, s.family)
	if err != nil {
		return fmt.Errorf("bind socket %q %s: %w", s.spec.Name, requested, err)
	}
	addr := net.JoinHostPort(a.String(), strconv.Itoa(s.spec.Port))
	sa, err := sockaddr(a, s.spec.Port)
	if err != nil {
		return fmt.Errorf("bind socket %q %s: %w", s.spec.Name, addr, err)
	}
	// With reuseport the arbiter's socket only reserves the port: each spawn
	// gets a listening copy from Prepare.
	fd, err := s.inetSocket(sa, s.spec.ReusePort && s.listens())
	if err != nil {
		return fmt.Errorf("bind socket %q %s: %w", s.spec.Name, addr, err)
	}
	real, err := unix.Getsockname(fd)
	if err != nil {
		unix.Close(fd)
		return fmt.Errorf("bind socket %q %s: getsockname: %w", s.spec.Name, addr, err)
	}
	s.host, s.port = inetAddr(real)
	s.sa = real
	s.file = s.newFile(fd)
	return nil
}

// inetAddr returns the host (an IP address, with its zone) and port of
// an inet socket address; "" and 0 for another.
func inetAddr(sa unix.Sockaddr) (host string, port int) {
	switch r := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrFrom4(r.Addr).String(), r.Port
	case *unix.SockaddrInet6:
		ip := netip.AddrFrom16(r.Addr)
		if r.ZoneId != 0 {
			ip = ip.WithZone(strconv.Itoa(int(r.ZoneId)))
			if ifi, err := net.InterfaceByIndex(int(r.ZoneId)); err == nil {
				ip = ip.WithZone(ifi.Name)
			}
		}
		return ip.String(), r.Port
	}
	return "", 0
}

// inetSocket creates a socket with the spec's options, binds it to sa and
// listens if the type listens, unless reserve is set: a reserving socket
// (reuseport) neither listens nor sets SO_REUSEADDR. Errors from bind itself
// are returned bare, so that the caller's message reads
// `bind socket "web" 127.0.0.1:8080: address already in use`.
func (s *Socket) inetSocket(sa unix.Sockaddr, reserve bool) (int, error) {
	fd, err := s.newSocket()
	if err != nil {
		return -1, err
	}
	if err := s.setOptions(fd, reserve); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if !reserve {
		if err := s.listen(fd); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// setOptions applies SO_REUSEADDR (stream sockets, as Circus does),
// SO_REUSEPORT and SO_BINDTODEVICE as the spec asks.
func (s *Socket) setOptions(fd int, reserve bool) error {
	// Only for stream sockets: on UDP, SO_REUSEADDR would let a second
	// socket share the port silently instead of failing with EADDRINUSE.
	// Not on a reserving socket either: Linux lets any SO_REUSEADDR socket
	// bind a port whose other SO_REUSEADDR sockets do not listen, so the
	// reservation would not hold (measured: a plain Bind took the port).
	if s.listens() && !reserve {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
		}
	}
	if s.spec.ReusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("setsockopt SO_REUSEPORT: %w", err)
		}
	}
	if s.spec.Interface != "" {
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, s.spec.Interface); err != nil {
			return fmt.Errorf("interface %q: setsockopt SO_BINDTODEVICE: %w", s.spec.Interface, err)
		}
	}
	return nil
}
