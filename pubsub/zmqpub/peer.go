package zmqpub

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/go-zeromq/zmq4"

	"github.com/ringmaster-dev/ringmaster/internal/zmqendpoint"
)

// peer is one subscriber past its handshake, the Sink's side of a
// [zmqendpoint.Conn]. Its Read, on the connection's reader goroutine, owns
// the subscription counts and publishes them as an immutable snapshot.
type peer struct {
	s       *Sink
	c       *zmqendpoint.Conn
	topics  atomic.Pointer[[]string]
	sent    atomic.Uint64
	dropped atomic.Uint64
}

func (s *Sink) newPeer(c *zmqendpoint.Conn, _ *peerConn) *peer {
	p := &peer{s: s, c: c}
	p.topics.Store(new([]string))
	return p
}

// Written counts n messages as sent, for this subscriber and in all.
func (p *peer) Written(n int) {
	p.sent.Add(uint64(n))
	p.s.sent.Add(uint64(n))
}

// Summary is what the slow-subscriber line adds: how much got through.
func (p *peer) Summary() []any {
	return []any{"sent", p.sent.Load(), "dropped", p.dropped.Load()}
}

// wants reports whether one of the peer's subscriptions prefixes topic.
func (p *peer) wants(topic string) bool {
	for _, t := range *p.topics.Load() {
		if strings.HasPrefix(topic, t) {
			return true
		}
	}
	return false
}

// Read applies subscription messages (\x01prefix, \x00prefix) until the
// connection fails. libzmq counts repeated subscriptions to one prefix, so
// does this.
func (p *peer) Read(zc *zmq4.Conn) {
	counts := make(map[string]int)
	for {
		msg, err := zc.RecvMsg()
		if err != nil {
			return
		}
		if msg.Type != zmq4.UsrMsg || len(msg.Frames) != 1 || len(msg.Frames[0]) == 0 {
			continue
		}
		f := msg.Frames[0]
		t := string(f[1:])
		switch f[0] {
		case 1:
			counts[t]++
		case 0:
			if counts[t]--; counts[t] <= 0 {
				delete(counts, t)
			}
		default:
			continue
		}
		topics := make([]string, 0, len(counts))
		for t := range counts {
			topics = append(topics, t)
		}
		slices.Sort(topics)
		p.topics.Store(&topics)
	}
}
