package zmqpub

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/zmqendpoint"
)

// SinkOptions configures [Listen]. The zero value is the safe default.
type SinkOptions struct {
	// AllowRemote permits a tcp endpoint on a non-loopback address. Events
	// are readable by anyone who can connect, so it is off by default.
	AllowRemote bool
	// Mode is the permission of an ipc socket file; 0 means 0600.
	Mode fs.FileMode
	// HandshakeTimeout bounds a new connection's ZMTP greeting and handshake;
	// 0 means 5s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds each write to a subscriber; a subscriber that
	// accepts nothing for that long is disconnected. 0 means 10s.
	WriteTimeout time.Duration
	// QueueSize is how many messages wait for one subscriber before further
	// ones are dropped for it (libzmq's SNDHWM); 0 means 1000.
	QueueSize int
	// SendBuffer, when positive, sets each subscriber connection's kernel
	// send buffer (SO_SNDBUF, libzmq's ZMQ_SNDBUF). The kernel otherwise
	// grows it to megabytes, which a stuck subscriber fills before its
	// queue, and so its drop count, moves at all.
	SendBuffer int
	// Logger receives connection-level news; nil discards it.
	Logger *slog.Logger
}

func (o SinkOptions) withDefaults() SinkOptions {
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
		o.QueueSize = 1000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Sink is a ZeroMQ PUB socket: it accepts SUB peers (libzmq or zmq4) and
// sends each of them the messages whose topic one of its subscriptions
// prefixes. See the package documentation for its goroutines and limits.
type Sink struct {
	opts SinkOptions // immutable after Listen
	ln   net.Listener
	addr string
	done chan struct{} // closed by Close
	wg   sync.WaitGroup

	sent    atomic.Uint64 // messages written, all subscribers
	dropped atomic.Uint64 // messages dropped, all subscribers, past ones too

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // every accepted connection still open
	peers  map[*peer]struct{}    // connections past the handshake
}

// Listen binds a PUB endpoint, "tcp://host:port" (port 0 picks one; host "*"
// means every interface) or "ipc:///path", and starts accepting subscribers.
//
// A tcp host that is not loopback is refused unless opts.AllowRemote. An ipc
// path left behind by a dead process is replaced, but only if nothing
// answers on it; the new socket file gets opts.Mode (0600 by default) and is
// removed by Close.
func Listen(endpoint string, opts SinkOptions) (*Sink, error) {
	opts = opts.withDefaults()
	ep, err := zmqendpoint.Listen(endpoint, zmqendpoint.Options{
		Name:        "pubsub",
		AllowRemote: opts.AllowRemote,
		Refusal: "events would be readable by anyone " +
			"who can connect to it; bind 127.0.0.1 or allow remote subscribers explicitly",
		Mode: opts.Mode, // the listener's Close removes the file
	})
	if err != nil {
		return nil, err
	}
	s := &Sink{
		opts:  opts,
		ln:    ep.Listener,
		addr:  ep.Addr,
		done:  make(chan struct{}),
		conns: make(map[net.Conn]struct{}),
		peers: make(map[*peer]struct{}),
	}
	s.wg.Go(s.acceptLoop)
	return s, nil
}

// Addr returns the endpoint actually bound, such as "tcp://127.0.0.1:40123".
func (s *Sink) Addr() string { return s.addr }

// Send queues the two-frame message [topic, body] for every subscriber with a
// subscription that prefixes topic (an empty subscription matches all). It
// never blocks: a subscriber whose queue is full loses the message, counted
// in its Dropped. Subscribers still in their handshake, or that have not
// subscribed yet, do not get it (ZeroMQ's "slow joiner"). body must not be
// modified afterwards. Send is safe for concurrent use; messages from one
// goroutine reach each subscriber in order.
func (s *Sink) Send(topic string, body []byte) {
	var msg []byte
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := range s.peers {
		if !p.wants(topic) {
			continue
		}
		if msg == nil {
			msg = encodeMessage(topic, body)
		}
		select {
		case p.q <- msg:
		default:
			p.dropped.Add(1)
			s.dropped.Add(1)
		}
	}
}

// SinkStats is a snapshot of a [Sink]'s counters.
type SinkStats struct {
	Subscribers int         // connections past the handshake
	Sent        uint64      // messages written to subscribers, since Listen
	Dropped     uint64      // messages dropped for full queues, since Listen
	Peers       []PeerStats // sorted by Remote
}

// PeerStats describes one connected subscriber.
type PeerStats struct {
	Remote        string   // the peer's address
	Subscriptions []string // its topic prefixes
	Queued        int      // messages waiting in its queue
	Sent          uint64
	Dropped       uint64
}

// Stats returns the current counters. It is safe for concurrent use.
func (s *Sink) Stats() SinkStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SinkStats{Subscribers: len(s.peers), Sent: s.sent.Load(), Dropped: s.dropped.Load()}
	for p := range s.peers {
		st.Peers = append(st.Peers, PeerStats{
			Remote:        p.remote,
			Subscriptions: append([]string(nil), *p.topics.Load()...),
			Queued:        len(p.q),
			Sent:          p.sent.Load(),
			Dropped:       p.dropped.Load(),
		})
	}
	slices.SortFunc(st.Peers, func(a, b PeerStats) int { return strings.Compare(a.Remote, b.Remote) })
	return st
}

// Close stops accepting, disconnects every subscriber (queued messages are
// discarded, as with ZMQ_LINGER 0, Circus's setting), waits for all of the
// Sink's goroutines to return, and removes an ipc socket file. Calling it
// again returns nil.
func (s *Sink) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close pubsub endpoint %s: %w", s.addr, err)
	}
	return nil
}

func (s *Sink) acceptLoop() {
	zmqendpoint.AcceptLoop(s.ln, s.done, s.opts.Logger, s.addr, func(nc net.Conn) bool {
		if tc, ok := nc.(*net.TCPConn); ok && s.opts.SendBuffer > 0 {
			_ = tc.SetWriteBuffer(s.opts.SendBuffer)
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
	})
}

// forget drops a finished connection from the Sink's books.
func (s *Sink) forget(nc net.Conn, p *peer) {
	s.mu.Lock()
	delete(s.conns, nc)
	if p != nil {
		delete(s.peers, p)
	}
	s.mu.Unlock()
}
