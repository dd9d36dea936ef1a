package control

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Handler executes control requests. Handle is called in a goroutine of its
// own for every request, casts included, so it may take as long as the
// command does (a "waiting" restart, say) without delaying any other
// request. ctx is cancelled when the [Server] closes; the peer going away
// does not cancel it (the command still completes, its reply is dropped).
// Handle must be safe for concurrent use.
type Handler interface {
	Handle(ctx context.Context, req Request) Reply
}

// HandlerFunc adapts a function to [Handler].
type HandlerFunc func(ctx context.Context, req Request) Reply

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req Request) Reply { return f(ctx, req) }

// ServerOptions configures [Listen]. The zero value is the safe default.
type ServerOptions struct {
	// AllowRemote permits a tcp endpoint on a non-loopback address. The
	// control protocol has no authentication, so it is off by default.
	AllowRemote bool
	// Mode is the permission of an ipc socket file; 0 means 0600.
	Mode fs.FileMode
	// HandshakeTimeout bounds a new connection's ZMTP greeting and
	// handshake; 0 means 5s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write of replies to a peer; a peer that
	// accepts nothing for that long is disconnected. 0 means 10s.
	WriteTimeout time.Duration
	// MaxMessage is the largest request accepted, in bytes; 0 means 1 MiB.
	// A larger one is read through and answered with errno 3; one with a
	// frame over 16 times this closes the connection.
	MaxMessage int
	// QueueSize is how many rendered replies may wait for one peer's
	// writer; 0 means 64. Handlers wait for room (the peer is slow).
	QueueSize int
	// MaxInFlight is how many requests of one peer may be in Handle at
	// once; 0 means 256. Beyond it the peer's reader waits, which stalls
	// that peer only.
	MaxInFlight int
	// Logger receives connection-level news; nil discards it.
	Logger *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 5 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxMessage <= 0 {
		o.MaxMessage = 1 << 20
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 64
	}
	if o.MaxInFlight <= 0 {
		o.MaxInFlight = 256
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server is Circus's control endpoint: a ZeroMQ ROUTER that accepts DEALER
// (and REQ) peers, libzmq's or zmq4's, hands each request to a [Handler]
// and sends each reply back on the connection it came from. See the
// package documentation for its goroutines and limits.
type Server struct {
	// Immutable after Listen.
	opts   ServerOptions
	h      Handler
	ln     net.Listener
	addr   string
	ipc    string // socket file to remove on Close, or ""
	done   chan struct{}
	ctx    context.Context // cancelled by Close: the Handle calls' context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // every accepted connection still open
}

// Listen binds a control endpoint, "tcp://host:port" (port 0 picks one;
// host "*" means every interface) or "ipc:///path", and starts serving h.
//
// A tcp host that is not loopback is refused unless opts.AllowRemote. An
// ipc path left behind by a dead process is replaced, but only if nothing
// answers on it; the new socket file gets opts.Mode (0600 by default) and
// is removed by Close.
func Listen(endpoint string, h Handler, opts ServerOptions) (*Server, error) {
	opts = opts.withDefaults()
	var (
		ln   net.Listener
		addr string
		ipc  string
		err  error
	)
	switch {
	case strings.HasPrefix(endpoint, "tcp://"):
		ln, err = listenTCP(endpoint, opts)
		if err == nil {
			addr = "tcp://" + ln.Addr().String()
		}
	case strings.HasPrefix(endpoint, "ipc://"):
		ipc = strings.TrimPrefix(endpoint, "ipc://")
		ln, err = listenIPC(endpoint, ipc, opts)
		addr = endpoint
	default:
		return nil, fmt.Errorf("control endpoint %q: want tcp://host:port or ipc:///path", endpoint)
	}
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   opts,
		h:      h,
		ln:     ln,
		addr:   addr,
		ipc:    ipc,
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
		conns:  make(map[net.Conn]struct{}),
	}
	s.wg.Go(s.acceptLoop)
	return s, nil
}

func listenTCP(endpoint string, opts ServerOptions) (net.Listener, error) {
	host, port, err := net.SplitHostPort(strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return nil, fmt.Errorf("control endpoint %q: %w", endpoint, err)
	}
	if host == "*" {
		host = ""
	}
	if !opts.AllowRemote && !isLoopback(host) {
		return nil, fmt.Errorf("control endpoint %q is not loopback: anyone who can connect could stop "+
			"or run programs; bind 127.0.0.1, use ipc://, or allow remote control explicitly", endpoint)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("control endpoint %q: %w", endpoint, err)
	}
	return ln, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func listenIPC(endpoint, path string, opts ServerOptions) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("control endpoint %q: empty path", endpoint)
	}
	if err := removeStaleSocket(path); err != nil {
		return nil, fmt.Errorf("control endpoint %q: %w", endpoint, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("control endpoint %q: %w", endpoint, err)
	}
	// Close removes the file itself, after the last connection is gone.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	// There is a moment between bind and chmod where the umask decides; the
	// umask is process-wide, so a library cannot narrow it safely.
	if err := os.Chmod(path, opts.Mode); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fmt.Errorf("control endpoint %q: %w", endpoint, err)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a unix socket nobody listens on.
// Anything else at path is left alone and reported.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	return os.Remove(path)
}

// Addr returns the endpoint actually bound, such as "tcp://127.0.0.1:40123".
func (s *Server) Addr() string { return s.addr }

// Close stops accepting, cancels the context of every Handle call still
// running, drops every connection (replies not yet written are discarded,
// as with Circus's ZMQ_LINGER 0), waits for all of the Server's goroutines,
// Handle calls included, and removes an ipc socket file. Calling it again
// returns nil.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.cancel()
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.ipc != "" {
		if rerr := os.Remove(s.ipc); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close control endpoint %s: %w", s.addr, err)
	}
	return nil
}

func (s *Server) acceptLoop() {
	var backoff time.Duration
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.done:
				return
			default:
			}
			// Out of fds or similar: wait a little rather than spin, as
			// net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.opts.Logger.Warn("accept failed", "endpoint", s.addr, "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-s.done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.conns[nc] = struct{}{}
		s.wg.Go(func() { s.serve(nc) })
		s.mu.Unlock()
	}
}

// forget drops a finished connection from the Server's books.
func (s *Server) forget(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}
