package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// peer is one connection past its handshake. Its reader goroutine decodes
// requests and starts a Handle goroutine for each; replies come back
// through q to the writer, which alone writes to the socket.
type peer struct {
	s     *Server
	q     chan []byte   // encoded reply messages, bounded
	gone  chan struct{} // closed when the connection is finished
	slots chan struct{} // one token per request in Handle
	// unsent counts replies queued and not yet written, for Drain.
	unsent atomic.Int64
}

// writeBatch is how many queued replies one write may carry.
const writeBatch = 64

// serve runs one connection: the handshake under a deadline, then a reader
// goroutine and, in this goroutine, the writer. It returns when the peer
// goes away, is too slow, or the Server closes, and only after the reader
// returned. Handle goroutines it started may outlive it; the Server waits
// for them.
func (s *Server) serve(nc net.Conn) {
	log := s.opts.Logger.With("endpoint", s.addr, "remote", nc.RemoteAddr().String())
	defer s.forget(nc)
	gc := newGuardConn(nc, s.opts.MaxMessage)
	nc.SetDeadline(time.Now().Add(s.opts.HandshakeTimeout))
	// ROUTER: a DEALER and a REQ both accept it as their peer type. The
	// peer's identity is metadata only: replies go back on this connection.
	zc, err := zmq4.Open(gc, null.Security(), zmq4.Router, nil, true, nil)
	if err != nil {
		log.Debug("handshake failed", "err", err)
		nc.Close()
		return
	}
	nc.SetDeadline(time.Time{})
	gc.Divert()

	p := &peer{
		s:     s,
		q:     make(chan []byte, s.opts.QueueSize),
		gone:  make(chan struct{}),
		slots: make(chan struct{}, s.opts.MaxInFlight),
	}
	log.Debug("peer connected", "identity", string(zc.Peer.Meta["Identity"]))
	s.mu.Lock()
	s.peers[p] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.peers, p)
		s.mu.Unlock()
	}()
	readerDone := make(chan struct{})
	go func() { // waited for below, so the Server's WaitGroup covers it
		defer close(readerDone)
		p.read(zc, gc, log)
	}()
	err = p.write(gc, nc, readerDone)
	close(p.gone)
	nc.Close()
	<-readerDone
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		log.Warn("disconnected slow peer", "timeout", s.opts.WriteTimeout)
	default:
		log.Debug("peer gone", "err", err)
	}
}

// read receives requests until the connection fails.
func (p *peer) read(zc *zmq4.Conn, gc *guardConn, log interface{ Debug(string, ...any) }) {
	var n uint64 // user messages received
	for {
		msg, err := zc.RecvMsg()
		if err != nil {
			log.Debug("read failed", "err", err)
			return
		}
		if msg.Type != zmq4.UsrMsg {
			continue // a command; zmq4 answered a PING itself
		}
		size, big := gc.oversized(n)
		n++
		frames := msg.Frames
		// A REQ socket (or anything) that sends an empty delimiter first
		// gets its reply behind one as well.
		var envelope bool
		if len(frames) >= 2 && len(frames[0]) == 0 {
			envelope, frames = true, frames[1:]
		}
		var errReply *Error
		switch {
		case big:
			errReply = Errorf(MessageError, "invalid message: %d bytes, more than the limit of %d", size, p.s.opts.MaxMessage)
		case len(frames) != 1:
			errReply = Errorf(MessageError, "invalid message: %d frames", len(msg.Frames))
		}
		if errReply != nil {
			if !p.send(envelope, p.render(Fail(errReply), nil)) {
				return
			}
			continue
		}
		req, derr := DecodeRequest(frames[0])
		if derr != nil {
			if !p.send(envelope, p.render(Fail(derr), req.ID)) {
				return
			}
			continue
		}
		select {
		case p.slots <- struct{}{}:
		case <-p.gone:
			return
		}
		run := func(ctx context.Context) Reply { return p.s.h.Handle(ctx, req) }
		if oh, ok := p.s.h.(OrderedHandler); ok {
			run = oh.Accept(req)
		}
		p.s.handling.Add(1)
		p.s.wg.Go(func() {
			defer p.s.handling.Add(-1)
			defer func() { <-p.slots }()
			rep := run(p.s.ctx)
			if req.IsCast() {
				return
			}
			p.send(envelope, p.render(rep, req.ID))
		})
	}
}

// render returns the reply frame, or an errno 5 one if a field cannot be
// rendered (a handler bug the client should hear about).
func (p *peer) render(rep Reply, id []byte) []byte {
	now := time.Now()
	b, err := rep.Render(id, now)
	if err != nil {
		p.s.opts.Logger.Error("cannot render reply", "err", err)
		fail := Failf(CommandError, "cannot render reply: %v", err)
		if b, err = fail.Render(id, now); err != nil {
			b, _ = fail.Render(nil, now) // BUG: DecodeRequest let a bad id through
		}
	}
	return b
}

// send queues one reply message, waiting for room; it reports false when
// the connection is finished and the reply was dropped.
func (p *peer) send(envelope bool, body []byte) bool {
	var m []byte
	if envelope {
		m = make([]byte, 0, len(body)+11)
		m = zmtpguard.AppendFrame(m, zmtpguard.FlagMore, nil)
	} else {
		m = make([]byte, 0, len(body)+9)
	}
	m = zmtpguard.AppendFrame(m, 0, body)
	p.unsent.Add(1)
	select {
	case p.q <- m:
		return true
	case <-p.gone:
		p.unsent.Add(-1)
		return false
	}
}

// write drains the peer's queue in batches, each one writev under the
// write deadline, with any control frame zmq4 produced in between.
func (p *peer) write(gc *guardConn, nc net.Conn, readerDone <-chan struct{}) error {
	batch := make([][]byte, 0, writeBatch+1)
	for {
		clear(batch) // let written replies go
		bufs, n, err := gc.Gather(batch[:0], p.q, writeBatch, p.s.done, readerDone)
		if err != nil {
			return err
		}
		if len(bufs) == 0 {
			continue
		}
		batch = bufs
		nc.SetWriteDeadline(time.Now().Add(p.s.opts.WriteTimeout))
		wb := net.Buffers(bufs) // WriteTo consumes wb, not batch
		if _, err := wb.WriteTo(nc); err != nil {
			return fmt.Errorf("write replies: %w", err)
		}
		p.unsent.Add(int64(-n))
	}
}
