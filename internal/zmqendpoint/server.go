package zmqendpoint

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/ringmaster-dev/ringmaster/access"
)

// ServerOptions configures [Serve]. Zero values get the defaults both
// endpoints document: Mode 0600, HandshakeTimeout 5s, WriteTimeout 10s,
// QueueSize 1, and a Logger that discards.
type ServerOptions struct {
	Options // how the endpoint is bound

	// Type is the socket type announced in the handshake (zmq4.Router,
	// zmq4.Pub); the peer checks it against its own.
	Type zmq4.SocketType
	// Noun names a peer in log lines: "peer", "subscriber".
	Noun string
	// HandshakeTimeout bounds a new connection's greeting and handshake.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write to a peer; a peer that accepts
	// nothing for that long is disconnected.
	WriteTimeout time.Duration
	// QueueSize is the capacity of each peer's queue.
	QueueSize int
	// SendBuffer, when positive, sets each tcp connection's SO_SNDBUF.
	SendBuffer int
	// Logger receives connection-level news.
	Logger *slog.Logger
	// Identify, when set, asks who is at the other end of a connection
	// as soon as it is accepted, before the handshake (see package
	// access); the answer is the Conn's Peer.
	Identify func(net.Conn) access.Peer
	// Admit, when set with Identify, decides whether an identified peer
	// may use the endpoint at all; one it refuses is disconnected before
	// the handshake.
	Admit func(access.Peer) error
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
	if o.QueueSize <= 0 {
		o.QueueSize = 1
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Guard is the net.Conn given to zmq4.Open in place of the accepted one:
// its read side is the endpoint's own (refusing oversized frames before
// zmq4 sizes a buffer for them), its write side a [zmtpguard.Diverter]
// embedded, which provides Divert and Gather.
type Guard interface {
	net.Conn
	// Divert sends zmq4's later writes to a buffer that Gather returns.
	Divert()
	// Gather waits for messages from q (up to max) or diverted control
	// frames, as zmtpguard.Diverter.Gather documents.
	Gather(bufs [][]byte, q <-chan []byte, max int, stop, readerDone <-chan struct{}) ([][]byte, int, error)
}

// Peer is an endpoint's side of one connection past its handshake: a
// constraint, met by a pointer type.
type Peer interface {
	comparable
	// Read receives messages from zc on the connection's reader goroutine
	// until zc fails. It may block on the peer's queue, but must give up
	// once [Conn.Gone] is closed.
	Read(zc *zmq4.Conn)
	// Written is called on the writer goroutine after n messages from the
	// queue went out.
	Written(n int)
	// Summary returns log attributes about the peer's traffic, for the
	// line that reports it disconnected for being slow; it is called on
	// the writer goroutine once the writer stopped.
	Summary() []any
}

// Conn is one connection past its handshake, as its [Peer] uses it.
type Conn struct {
	Remote   string       // the peer's address
	Identity string       // the peer's ZMTP Identity property, if any
	Log      *slog.Logger // with the endpoint and the remote address
	// Peer is who connected, if ServerOptions.Identify is set.
	Peer access.Peer

	q    chan []byte
	gone chan struct{}
}

// Queue is the connection's bounded queue of messages (whole ZMTP frames,
// encoded) that its writer goroutine sends. A send must not block past
// [Conn.Gone].
func (c *Conn) Queue() chan<- []byte { return c.q }

// Queued returns how many messages wait in the queue.
func (c *Conn) Queued() int { return len(c.q) }

// Gone is closed when the writer stopped: nothing queued after that is sent.
func (c *Conn) Gone() <-chan struct{} { return c.gone }

// writeBatch is how many queued messages one write may carry.
const writeBatch = 64

// Server is the skeleton shared by Ringmaster's ZeroMQ endpoints (the
// control ROUTER and the events PUB): an accept loop, and per connection
// the ZMTP handshake under a deadline, then a reader goroutine that the
// endpoint's [Peer] runs and a writer goroutine that sends the peer's
// queue in batches under a write deadline. A connection that is silent or
// slow costs only its own goroutines.
//
// Its mutex guards the sets of connections and peers, and is held while
// [Server.Each] runs.
type Server[G Guard, P Peer] struct {
	// Immutable after Serve.
	opts    ServerOptions
	ep      *Endpoint
	guard   func(net.Conn) G
	newPeer func(*Conn, G) P
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu     sync.Mutex
	closed bool
	warned map[string]bool       // peers whose refusal was logged as a warning
	conns  map[net.Conn]struct{} // every accepted connection still open
	peers  map[P]struct{}        // connections past the handshake
}

// Serve binds endpoint as [Listen] does and starts accepting. Each
// connection is wrapped by guard, goes through the handshake, and is then
// given to newPeer, along with its guard.
func Serve[G Guard, P Peer](endpoint string, o ServerOptions, guard func(net.Conn) G, newPeer func(*Conn, G) P) (*Server[G, P], error) {
	o = o.withDefaults()
	ep, err := Listen(endpoint, o.Options)
	if err != nil {
		return nil, err
	}
	s := &Server[G, P]{
		opts:    o,
		ep:      ep,
		guard:   guard,
		newPeer: newPeer,
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
		peers:   make(map[P]struct{}),
	}
	s.wg.Go(func() { acceptLoop(ep.Listener, s.done, o.Logger, ep.Addr, s.accept) })
	return s, nil
}

// Addr returns the endpoint actually bound, such as "tcp://127.0.0.1:40123".
func (s *Server[G, P]) Addr() string { return s.ep.Addr }

// Each calls f for every peer past its handshake, with the Server's mutex
// held: f must be quick and must not call back into the Server.
func (s *Server[G, P]) Each(f func(P)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.peers {
		f(p)
	}
}

// Close stops accepting, drops every connection (whatever is queued is
// discarded), waits for every goroutine the Server started, and removes an
// ipc socket file kept with KeepFile. Calling it again returns nil.
func (s *Server[G, P]) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.ep.Listener.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if s.opts.KeepFile {
		if rerr := s.ep.RemoveFile(); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close %s endpoint %s: %w", s.opts.Name, s.ep.Addr, err)
	}
	return nil
}

// accept books nc and starts serving it; it reports false once closed.
func (s *Server[G, P]) accept(nc net.Conn) bool {
	if tc, ok := nc.(*net.TCPConn); ok && s.opts.SendBuffer > 0 {
		_ = tc.SetWriteBuffer(s.opts.SendBuffer) // a hint; the default works too
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		nc.Close()
		return false
	}
	s.conns[nc] = struct{}{}
	s.wg.Go(func() { s.serve(nc) })
	return true
}

// serve runs one connection: the handshake under a deadline, then a reader
// goroutine and, in this goroutine, the writer. It returns when the peer
// goes away, is too slow, or the Server closes, and only after the reader
// returned.
func (s *Server[G, P]) serve(nc net.Conn) {
	c := &Conn{Remote: nc.RemoteAddr().String(), gone: make(chan struct{})}
	c.Log = s.opts.Logger.With("endpoint", s.ep.Addr, "remote", c.Remote)
	defer s.forget(nc)
	if s.opts.Identify != nil {
		// Before the handshake: until it is done the client cannot have
		// sent a command and closed its socket.
		c.Peer = s.opts.Identify(nc)
		if s.opts.Admit != nil {
			if err := s.opts.Admit(c.Peer); err != nil {
				s.refused(c, err)
				nc.Close()
				return
			}
		}
	}
	g := s.guard(nc)
	nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	zc, err := zmq4.Open(g, null.Security(), s.opts.Type, nil, true, nil)
	if err != nil {
		c.Log.Debug("handshake failed", "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	g.Divert()
	c.Identity = string(zc.Peer.Meta["Identity"])
	c.q = make(chan []byte, s.opts.QueueSize)
	p := s.newPeer(c, g)
	if !s.admit(p) {
		nc.Close()
		return
	}
	defer s.dismiss(p)
	c.Log.Debug(s.opts.Noun+" connected", "identity", c.Identity)

	readerDone := make(chan struct{})
	go func() { // waited for below, so the Server's WaitGroup covers it
		defer close(readerDone)
		p.Read(zc)
	}()
	err = s.write(nc, c, p, g, readerDone)
	close(c.gone) // before waiting: the reader may be blocked on the queue
	nc.Close()
	<-readerDone
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.Log.Warn("disconnected slow "+s.opts.Noun, append([]any{"timeout", s.opts.WriteTimeout}, p.Summary()...)...)
		return
	}
	c.Log.Debug(s.opts.Noun+" gone", "err", err)
}

// write drains the peer's queue in batches, each one writev under the
// write deadline, with any control frame zmq4 produced in between.
func (s *Server[G, P]) write(nc net.Conn, c *Conn, p P, g G, readerDone <-chan struct{}) error {
	batch := make([][]byte, 0, writeBatch+1)
	for {
		clear(batch) // let written messages go
		bufs, n, err := g.Gather(batch[:0], c.q, writeBatch, s.done, readerDone)
		if err != nil {
			return err
		}
		if len(bufs) == 0 {
			continue
		}
		batch = bufs
		// To nc itself, not g: g diverts writes, and only the real
		// connection makes net.Buffers one writev.
		nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		wb := net.Buffers(bufs) // WriteTo consumes wb, not batch
		if _, err := wb.WriteTo(nc); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		p.Written(n)
	}
}

// maxWarned bounds the peers whose refusal is remembered: a client that
// libzmq reconnects every 100 ms is worth one warning, not ten a second.
const maxWarned = 1024

// refused logs a peer Admit turned away: a warning the first time for that
// peer, then at debug level.
func (s *Server[G, P]) refused(c *Conn, err error) {
	key := c.Peer.Origin.String() + " " + strconv.Itoa(c.Peer.UID)
	s.mu.Lock()
	first := !s.warned[key] && len(s.warned) < maxWarned
	if first {
		if s.warned == nil {
			s.warned = map[string]bool{}
		}
		s.warned[key] = true
	}
	s.mu.Unlock()
	level := slog.LevelDebug
	if first {
		level = slog.LevelWarn
	}
	c.Log.Log(context.Background(), level, s.opts.Noun+" refused", "err", err)
}

// admit books p as past its handshake, unless the Server is closing.
func (s *Server[G, P]) admit(p P) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.peers[p] = struct{}{}
	return true
}

// dismiss drops a finished peer from the Server's books.
func (s *Server[G, P]) dismiss(p P) {
	s.mu.Lock()
	delete(s.peers, p)
	s.mu.Unlock()
}

// forget drops a finished connection from the Server's books.
func (s *Server[G, P]) forget(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
}
