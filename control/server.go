package control

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/internal/zmqendpoint"
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

// OrderedHandler is a Handler that must see each peer's requests in the
// order they were sent, so that commands on one watcher run in that order
// although each is handled in a goroutine of its own. Accept is called on
// the peer's reader goroutine, one request at a time, and must not block:
// it queues the request and returns the function that, run in that
// request's goroutine in place of Handle, waits for its turn and answers.
type OrderedHandler interface {
	Handler
	Accept(req Request) func(ctx context.Context) Reply
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
	// Identify, when set, tells who is at the other end of each
	// connection (access.Identify), once, as it is accepted; every
	// request of the connection carries the answer as its Peer.
	Identify func(net.Conn) access.Peer
}

func (o ServerOptions) withDefaults() ServerOptions {
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
	srv    *zmqendpoint.Server[*guardConn, *peer] // connections and their goroutines
	ctx    context.Context                        // cancelled by Close: the Handle calls' context
	cancel context.CancelFunc

	handlers sync.WaitGroup // Handle goroutines, which may outlive their connection
	handling atomic.Int64   // Handle calls in progress, for Drain
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
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{opts: opts, h: h, ctx: ctx, cancel: cancel}
	srv, err := zmqendpoint.Serve(endpoint, zmqendpoint.ServerOptions{
		Options: zmqendpoint.Options{
			Name:        "control",
			AllowRemote: opts.AllowRemote,
			Refusal: "anyone who can connect could stop " +
				"or run programs; bind 127.0.0.1, use ipc://, or allow remote control explicitly",
			Mode:     opts.Mode,
			KeepFile: true, // Close removes it, after the last connection is gone
		},
		// ROUTER: a DEALER and a REQ both accept it as their peer type.
		Type:             zmq4.Router,
		Noun:             "peer",
		HandshakeTimeout: opts.HandshakeTimeout,
		WriteTimeout:     opts.WriteTimeout,
		QueueSize:        opts.QueueSize,
		Logger:           opts.Logger,
		Identify:         opts.Identify,
	}, func(nc net.Conn) *guardConn { return newGuardConn(nc, opts.MaxMessage) }, s.newPeer)
	if err != nil {
		cancel()
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// Addr returns the endpoint actually bound, such as "tcp://127.0.0.1:40123".
func (s *Server) Addr() string { return s.srv.Addr() }

// Drain waits, until ctx is done, for every Handle call in progress to
// return and its reply to be written, so that a Close after it loses no
// answer (quit's, say). Requests that arrive meanwhile are served as usual.
func (s *Server) Drain(ctx context.Context) error {
	// Handlers end and writers send what they queue without delay; poll,
	// with ctx as the deadline, for the last of both.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		var unsent int64
		s.srv.Each(func(p *peer) { unsent += p.unsent.Load() })
		if unsent == 0 && s.handling.Load() == 0 {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops accepting, cancels the context of every Handle call still
// running, drops every connection (replies not yet written are discarded,
// as with Circus's ZMQ_LINGER 0), waits for all of the Server's goroutines,
// Handle calls included, and removes an ipc socket file. Calling it again
// returns nil.
func (s *Server) Close() error {
	s.cancel()
	err := s.srv.Close()
	// Every reader has returned, so no Handle call starts any more; those
	// running see ctx cancelled and their connection gone.
	s.handlers.Wait()
	return err
}

// Shutdown sends the replies still owed, as [Server.Drain] does, until ctx
// is done, and then closes the Server, following net/http's contract: it
// returns ctx.Err() when replies were still unsent at the deadline, or
// what Close returns.
func (s *Server) Shutdown(ctx context.Context) error {
	derr := s.Drain(ctx)
	if err := s.Close(); err != nil {
		return err
	}
	return derr
}
