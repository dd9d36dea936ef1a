package sockets

// Spec describes one [socket:NAME] section. The zero value of every field
// other than Name means "Circus's default", applied by config.Defaults; a Spec
// built by hand must set Backlog and Family itself.
type Spec struct {
	// Name is the socket's name, lower-cased as Circus does.
	Name string
	// Host is the address to bind for TCP and UDP ("localhost" by default;
	// resolved with the first address of the requested family winning).
	// "localhost" is 127.0.0.1 or ::1 by Family; "" is the wildcard address,
	// as in Python's bind.
	Host string
	// Port is the TCP or UDP port; 0 asks the kernel for a free one, and the
	// real port is reported by [Socket.Port] after binding.
	Port int
	// Path makes this a unix socket; Host and Port are then ignored.
	Path string
	// Family is "AF_INET", "AF_INET6" or "AF_UNIX".
	Family string
	// Type is "SOCK_STREAM" (default), "SOCK_DGRAM", "SOCK_SEQPACKET",
	// "SOCK_RAW" or "SOCK_RDM". listen() is called only for stream and
	// seqpacket sockets.
	Type string
	// Proto is a protocol name such as "tcp" or "udp" ("" means 0, the
	// kernel's default for the family and type).
	Proto string
	// Backlog is listen()'s backlog (Circus's default: 2048, also used by
	// Bind when Backlog is not positive).
	Backlog int
	// Umask is applied while binding a unix socket, read as octal (Circus
	// reads it as decimal, a bug we do not copy). Negative means the default,
	// 0o077: only the arbiter's user may connect.
	Umask int
	// Replace removes a stale unix socket file before binding.
	Replace bool
	// ReusePort sets SO_REUSEPORT. As in Circus, each worker then gets a
	// listener of its own, bound to the same address, and the kernel spreads
	// connections over them; the arbiter keeps one bound, non-listening
	// socket so that the port stays reserved.
	ReusePort bool
	// Blocking hands children a blocking socket; by default it is
	// non-blocking, as Circus does.
	Blocking bool
	// Interface binds the socket to one network interface (SO_BINDTODEVICE).
	Interface string
}
