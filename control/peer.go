package control

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"

	"github.com/ringmaster-dev/ringmaster/internal/zmqendpoint"
	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// peer is one connection past its handshake, the control endpoint's side
// of a [zmqendpoint.Conn]. Its Read, on the connection's reader goroutine,
// decodes requests and starts a Handle goroutine for each; replies come
// back through the connection's queue to its writer, which alone writes to
// the socket.
type peer struct {
	s     *Server
	c     *zmqendpoint.Conn
	gc    *guardConn
	slots chan struct{} // one token per request in Handle
	// unsent counts replies queued and not yet written, for Drain.
	unsent atomic.Int64
}

func (s *Server) newPeer(c *zmqendpoint.Conn, gc *guardConn) *peer {
	return &peer{s: s, c: c, gc: gc, slots: make(chan struct{}, s.opts.MaxInFlight)}
}

// Written counts n replies as sent.
func (p *peer) Written(n int) { p.unsent.Add(int64(-n)) }

// Summary has nothing to add to the slow-peer line.
func (p *peer) Summary() []any { return nil }

// Read receives requests until the connection fails. Handle goroutines it
// starts may outlive the connection; the Server waits for them.
func (p *peer) Read(zc *zmq4.Conn) {
	var n uint64 // user messages received
	for {
		msg, err := zc.RecvMsg()
		if err != nil {
			p.c.Log.Debug("read failed", "err", err)
			return
		}
		if msg.Type != zmq4.UsrMsg {
			continue // a command; zmq4 answered a PING itself
		}
		size, big := p.gc.oversized(n)
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
			if !p.send(p.message(envelope, Fail(errReply), nil)) {
				return
			}
			continue
		}
		req, derr := DecodeRequest(frames[0])
		req.Peer = p.c.Peer
		req.Peer.Via = "control"
		if derr != nil {
			if !p.send(p.message(envelope, Fail(derr), req.ID)) {
				return
			}
			continue
		}
		select {
		case p.slots <- struct{}{}:
		case <-p.c.Gone():
			return
		}
		run := func(ctx context.Context) Reply { return p.s.h.Handle(ctx, req) }
		if oh, ok := p.s.h.(OrderedHandler); ok {
			run = oh.Accept(req)
		}
		p.s.handling.Add(1)
		p.s.handlers.Go(func() {
			defer p.s.handling.Add(-1)
			defer func() { <-p.slots }()
			rep := run(p.s.ctx)
			if req.IsCast() {
				return
			}
			p.send(p.message(envelope, rep, req.ID))
		})
	}
}

// frameRoom is the room left in front of a reply's body for its frame
// headers: an empty delimiter frame (2 bytes) and the body's own (up to 9).
const frameRoom = 11

// message returns the reply as the message to queue, its body rendered
// once behind frameRoom and its headers then written in front of it in
// place: a large reply (logs, a megabyte a second to a follower) is not
// copied again. A field that cannot be rendered (a handler bug the client
// should hear about) makes it an errno 5 reply.
func (p *peer) message(envelope bool, rep Reply, id []byte) []byte {
	now := time.Now()
	room := make([]byte, frameRoom, frameRoom+rep.renderSize())
	b, err := rep.AppendRender(room, id, now)
	if err != nil {
		p.s.opts.Logger.Error("cannot render reply", "err", err)
		fail := Failf(CommandError, "cannot render reply: %v", err)
		if b, err = fail.AppendRender(room, id, now); err != nil {
			b, _ = fail.AppendRender(room, nil, now) // BUG: DecodeRequest let a bad id through
		}
	}
	var hdr []byte
	if envelope {
		hdr = zmtpguard.AppendFrame(make([]byte, 0, frameRoom), zmtpguard.FlagMore, nil)
	}
	hdr = zmtpguard.AppendFrameHeader(hdr, 0, len(b)-frameRoom)
	start := frameRoom - len(hdr)
	copy(b[start:], hdr)
	return b[start:]
}

// send queues one reply message, waiting for room; it reports false when
// the connection is finished and the reply was dropped.
func (p *peer) send(m []byte) bool {
	p.unsent.Add(1)
	select {
	case p.c.Queue() <- m:
		return true
	case <-p.c.Gone():
		p.unsent.Add(-1)
		return false
	}
}
