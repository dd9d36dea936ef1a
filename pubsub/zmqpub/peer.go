package zmqpub

import (
	"errors"
	"net"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
)

// peer is one subscriber past its handshake. Its reader goroutine owns the
// subscription counts and publishes them as an immutable snapshot; its
// writer goroutine owns the socket for writing.
type peer struct {
	remote  string
	q       chan []byte // encoded messages, bounded: the SNDHWM
	topics  atomic.Pointer[[]string]
	sent    atomic.Uint64
	dropped atomic.Uint64
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

// writeBatch is how many queued messages one write may carry.
const writeBatch = 64

// serve runs one connection: the handshake under a deadline, then a reader
// goroutine and, in this goroutine, the writer. It returns when the peer goes
// away, is too slow, or the Sink closes, and only after the reader returned.
func (s *Sink) serve(nc net.Conn) {
	log := s.opts.Logger.With("endpoint", s.addr, "remote", nc.RemoteAddr().String())
	pc := newPeerConn(nc)
	nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	zc, err := zmq4.Open(pc, null.Security(), zmq4.Pub, nil, true, nil)
	if err != nil {
		log.Debug("handshake failed", "err", err)
		nc.Close()
		s.forget(nc, nil)
		return
	}
	nc.SetDeadline(time.Time{})
	pc.Divert()

	p := &peer{remote: nc.RemoteAddr().String(), q: make(chan []byte, s.opts.QueueSize)}
	p.topics.Store(new([]string))
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		s.forget(nc, nil)
		return
	}
	s.peers[p] = struct{}{}
	s.mu.Unlock()
	log.Debug("subscriber connected")

	readerDone := make(chan struct{})
	go func() { // waited for below, so the Sink's WaitGroup covers it
		defer close(readerDone)
		p.read(zc)
	}()
	err = s.write(p, pc, nc, readerDone)
	nc.Close()
	<-readerDone
	s.forget(nc, p)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Warn("disconnected slow subscriber", "timeout", s.opts.WriteTimeout,
			"sent", p.sent.Load(), "dropped", p.dropped.Load())
	default:
		log.Debug("subscriber gone", "err", err)
	}
}

// read applies subscription messages (\x01prefix, \x00prefix) until the
// connection fails. libzmq counts repeated subscriptions to one prefix, so
// does this.
func (p *peer) read(zc *zmq4.Conn) {
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

// write drains the peer's queue in batches, each one writev under the
// write deadline, with any control frame zmq4 produced in between.
func (s *Sink) write(p *peer, pc *peerConn, nc net.Conn, readerDone <-chan struct{}) error {
	batch := make([][]byte, 0, writeBatch+1)
	for {
		clear(batch) // let written messages go
		bufs, k, err := pc.Gather(batch[:0], p.q, writeBatch, s.done, readerDone)
		if err != nil {
			return err
		}
		n := uint64(k)
		if len(bufs) == 0 {
			continue
		}
		batch = bufs
		nc.SetWriteDeadline(time.Now().Add(s.opts.WriteTimeout))
		wb := net.Buffers(bufs) // WriteTo consumes wb, not batch
		if _, err := wb.WriteTo(nc); err != nil {
			return err
		}
		p.sent.Add(n)
		s.sent.Add(n)
	}
}
