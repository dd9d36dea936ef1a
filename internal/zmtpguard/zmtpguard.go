// Package zmtpguard holds the pieces of the net.Conn wrappers that
// Ringmaster puts between a socket and zmq4: ZMTP 3.0 frame headers, and a
// [Diverter] that, once the handshake is over, keeps zmq4's own writes (a
// PONG answering a PING) in a buffer that the connection's writer
// goroutine sends between whole messages, so they never interleave with
// the frames it writes.
//
// The read side, which refuses oversized frames before zmq4 sizes a buffer
// for them, is each socket's own (a ROUTER answers an oversized request, a
// PUB drops the peer) and wraps a Diverter. The package works on bytes and
// net.Conn and does not import zmq4.
package zmtpguard

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// ZMTP 3.0 frame flags, and the greeting zmq4 reads in one piece.
const (
	FlagMore    = 0x01
	FlagLong    = 0x02
	FlagCommand = 0x04
	GreetingLen = 64
)

// AppendFrameHeader appends the header of a frame with the given flags and
// an n-byte body: short (two bytes) up to 255, else long (nine bytes).
func AppendFrameHeader(b []byte, flags byte, n int) []byte {
	if n > 255 {
		b = append(b, flags|FlagLong)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, flags, byte(n))
}

// AppendFrame appends one frame: header and body.
func AppendFrame(b []byte, flags byte, body []byte) []byte {
	return append(AppendFrameHeader(b, flags, len(body)), body...)
}

// CompleteFrames returns the length of the longest prefix of b made of
// whole frames.
func CompleteFrames(b []byte) int {
	n := 0
	for {
		rest := b[n:]
		if len(rest) < 2 {
			return n
		}
		hdr, size := 2, uint64(rest[1])
		if rest[0]&FlagLong != 0 {
			if len(rest) < 9 {
				return n
			}
			hdr, size = 9, binary.BigEndian.Uint64(rest[1:9])
		}
		if uint64(len(rest)-hdr) < size {
			return n
		}
		n += hdr + int(size)
	}
}

// Diverter is a net.Conn whose writes, once [Diverter.Divert] is called,
// go to a buffer instead of the connection; the writer goroutine waits on
// [Diverter.Kick] and sends [Diverter.TakeControl]'s frames itself.
type Diverter struct {
	net.Conn

	mu       sync.Mutex
	diverted bool   // after the handshake: writes go to ctl
	ctl      []byte // frames zmq4 wrote, for the writer goroutine
	kick     chan struct{}
}

// NewDiverter wraps nc; writes pass straight through until Divert.
func NewDiverter(nc net.Conn) *Diverter {
	return &Diverter{Conn: nc, kick: make(chan struct{}, 1)}
}

// Write writes p to the connection, or after Divert appends it to the
// control buffer and signals Kick.
func (c *Diverter) Write(p []byte) (int, error) {
	c.mu.Lock()
	if !c.diverted {
		c.mu.Unlock()
		return c.Conn.Write(p)
	}
	c.ctl = append(c.ctl, p...)
	c.mu.Unlock()
	select {
	case c.kick <- struct{}{}:
	default:
	}
	return len(p), nil
}

// Divert sends later writes to the control buffer.
func (c *Diverter) Divert() {
	c.mu.Lock()
	c.diverted = true
	c.mu.Unlock()
}

// Kick receives a value after a diverted write.
func (c *Diverter) Kick() <-chan struct{} { return c.kick }

// TakeControl removes and returns the whole control frames written so far.
func (c *Diverter) TakeControl() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := CompleteFrames(c.ctl)
	if n == 0 {
		return nil
	}
	out := c.ctl[:n:n]
	c.ctl = append([]byte(nil), c.ctl[n:]...)
	return out
}

// errPeerClosed is what [Diverter.Gather] returns once the reader is done.
var errPeerClosed = errors.New("peer closed the connection")

// Gather waits for something for the writer goroutine to send and appends
// it to bufs: a message from q and up to max-1 more already queued, then
// the whole control frames zmq4 wrote, if any. It returns the buffers and
// how many of them are messages; none at all after a kick with no whole
// frame yet. It returns net.ErrClosed once stop is closed, and an error
// once readerDone is.
func (c *Diverter) Gather(bufs [][]byte, q <-chan []byte, max int, stop, readerDone <-chan struct{}) ([][]byte, int, error) {
	select {
	case <-stop:
		return bufs, 0, net.ErrClosed
	case <-readerDone:
		return bufs, 0, errPeerClosed
	case <-c.kick:
	case m := <-q:
		bufs = append(bufs, m)
	drain:
		for len(bufs) < max {
			select {
			case m := <-q:
				bufs = append(bufs, m)
			default:
				break drain
			}
		}
	}
	n := len(bufs)
	if ctl := c.TakeControl(); ctl != nil {
		bufs = append(bufs, ctl)
	}
	return bufs, n, nil
}
