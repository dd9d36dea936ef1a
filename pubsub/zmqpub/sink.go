package zmqpub

import (
	"io/fs"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/ringmaster-dev/ringmaster/access"
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
	// Identify and Admit, when both set, decide who may subscribe: each
	// connection is identified as it is accepted (access.Identify) and
	// dropped before its handshake if Admit refuses it.
	Identify func(net.Conn) access.Peer
	Admit    func(access.Peer) error
}

func (o SinkOptions) withDefaults() SinkOptions {
	if o.QueueSize <= 0 {
		o.QueueSize = 1000
	}
	return o
}

// Sink is a ZeroMQ PUB socket: it accepts SUB peers (libzmq or zmq4) and
// sends each of them the messages whose topic one of its subscriptions
// prefixes. See the package documentation for its goroutines and limits.
type Sink struct {
	srv *zmqendpoint.Server[*peerConn, *peer] // immutable after Listen

	sent    atomic.Uint64 // messages written, all subscribers
	dropped atomic.Uint64 // messages dropped, all subscribers, past ones too
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
	s := &Sink{}
	srv, err := zmqendpoint.Serve(endpoint, zmqendpoint.ServerOptions{
		Options: zmqendpoint.Options{
			Name:        "pubsub",
			AllowRemote: opts.AllowRemote,
			Refusal: "events would be readable by anyone " +
				"who can connect to it; bind 127.0.0.1 or allow remote subscribers explicitly",
			Mode: opts.Mode, // the listener's Close removes the file
		},
		Type:             zmq4.Pub,
		Noun:             "subscriber",
		HandshakeTimeout: opts.HandshakeTimeout,
		WriteTimeout:     opts.WriteTimeout,
		QueueSize:        opts.QueueSize,
		Identify:         opts.Identify,
		Admit:            opts.Admit,
		SendBuffer:       opts.SendBuffer,
		Logger:           opts.Logger,
	}, newPeerConn, s.newPeer)
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// Addr returns the endpoint actually bound, such as "tcp://127.0.0.1:40123".
func (s *Sink) Addr() string { return s.srv.Addr() }

// Send queues the two-frame message [topic, body] for every subscriber with a
// subscription that prefixes topic (an empty subscription matches all). It
// never blocks: a subscriber whose queue is full loses the message, counted
// in its Dropped. Subscribers still in their handshake, or that have not
// subscribed yet, do not get it (ZeroMQ's "slow joiner"). body must not be
// modified afterwards. Send is safe for concurrent use; messages from one
// goroutine reach each subscriber in order.
func (s *Sink) Send(topic string, body []byte) {
	var msg []byte
	s.srv.Each(func(p *peer) {
		if !p.wants(topic) {
			return
		}
		if msg == nil {
			msg = encodeMessage(topic, body)
		}
		select {
		case p.c.Queue() <- msg:
		default:
			p.dropped.Add(1)
			s.dropped.Add(1)
		}
	})
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
	st := SinkStats{Sent: s.sent.Load(), Dropped: s.dropped.Load()}
	s.srv.Each(func(p *peer) {
		st.Subscribers++
		st.Peers = append(st.Peers, PeerStats{
			Remote:        p.c.Remote,
			Subscriptions: append([]string(nil), *p.topics.Load()...),
			Queued:        p.c.Queued(),
			Sent:          p.sent.Load(),
			Dropped:       p.dropped.Load(),
		})
	})
	slices.SortFunc(st.Peers, func(a, b PeerStats) int { return strings.Compare(a.Remote, b.Remote) })
	return st
}

// Close stops accepting, disconnects every subscriber (queued messages are
// discarded, as with ZMQ_LINGER 0, Circus's setting), waits for all of the
// Sink's goroutines to return, and removes an ipc socket file. Calling it
// again returns nil.
func (s *Sink) Close() error { return s.srv.Close() }

// queued is how many messages wait in the subscribers' queues together.
func (s *Sink) queued() int {
	n := 0
	s.srv.Each(func(p *peer) { n += p.c.Queued() })
	return n
}

// subscribed is how many subscribers have subscribed to something.
func (s *Sink) subscribed() int {
	n := 0
	s.srv.Each(func(p *peer) {
		if len(*p.topics.Load()) > 0 {
			n++
		}
	})
	return n
}
