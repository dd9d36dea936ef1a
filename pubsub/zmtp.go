package pubsub

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
)

// ZMTP 3.0 framing, as much as the sink needs beyond zmq4's codec.

const (
	flagMore    = 0x01
	flagLong    = 0x02
	greetingLen = 64 // the ZMTP 3.0 greeting zmq4 reads in one piece

	// maxInbound caps one inbound frame and one inbound message. A PUB only
	// ever receives the handshake and subscriptions; zmq4 allocates a frame's
	// declared size before reading it, so an unchecked 8-byte length from a
	// hostile peer would take the arbiter down.
	maxInbound = 1 << 20
)

var errInboundTooLarge = errors.New("inbound ZMTP message larger than 1 MiB")

// encodeMessage returns the wire bytes of the two-frame message
// [topic, body], built once per Send and shared by every subscriber's queue.
func encodeMessage(topic string, body []byte) []byte {
	b := make([]byte, 0, 18+len(topic)+len(body))
	b = appendFrameHeader(b, flagMore, len(topic))
	b = append(b, topic...)
	b = appendFrameHeader(b, 0, len(body))
	return append(b, body...)
}

func appendFrameHeader(b []byte, flags byte, n int) []byte {
	if n > 255 {
		b = append(b, flags|flagLong)
		return binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, flags, byte(n))
}

// completeFrames returns the length of the longest prefix of b made of whole
// frames.
func completeFrames(b []byte) int {
	n := 0
	for {
		rest := b[n:]
		if len(rest) < 2 {
			return n
		}
		hdr, size := 2, uint64(rest[1])
		if rest[0]&flagLong != 0 {
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

// peerConn is the net.Conn given to zmq4.Open. It guards reads with a
// running ZMTP frame parser that refuses oversized frames before zmq4 sizes
// a buffer for them, and, once the handshake is over, diverts zmq4's own
// writes (a PONG answering a heartbeat PING) into a buffer that the peer's
// writer goroutine sends between whole messages, so that they never
// interleave with event frames on the wire.
type peerConn struct {
	net.Conn

	// Read state, touched only by the goroutine reading (handshake, then reader).
	skip     int    // greeting bytes, or body bytes of the current frame, still to pass
	sizeLeft int    // length bytes of the current frame header still to read
	size     uint64 // the length being read
	flags    byte   // flags of the current frame
	msgSize  uint64 // bytes in the current message so far
	inHeader bool   // the next byte is a flags byte

	mu       sync.Mutex
	diverted bool   // after the handshake: writes go to ctl
	ctl      []byte // control frames zmq4 wrote, for the writer goroutine
	kick     chan struct{}
}

func newPeerConn(nc net.Conn) *peerConn {
	return &peerConn{Conn: nc, skip: greetingLen, kick: make(chan struct{}, 1)}
}

func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	for i := 0; i < n; {
		switch {
		case c.skip > 0:
			step := min(c.skip, n-i)
			c.skip -= step
			i += step
			if c.skip == 0 {
				c.inHeader = true
			}
		case c.inHeader:
			c.flags, c.size, c.inHeader = p[i], 0, false
			c.sizeLeft = 1
			if c.flags&flagLong != 0 {
				c.sizeLeft = 8
			}
			i++
		default: // a length byte
			c.size = c.size<<8 | uint64(p[i])
			c.sizeLeft--
			if c.sizeLeft > 0 {
				i++
				continue
			}
			if c.size > maxInbound || c.msgSize+c.size > maxInbound {
				// Withhold the last length byte: zmq4's io.ReadFull then
				// fails instead of allocating.
				return i, errInboundTooLarge
			}
			i++
			c.msgSize += c.size
			if c.flags&flagMore == 0 {
				c.msgSize = 0
			}
			c.skip = int(c.size)
			c.inHeader = c.skip == 0
		}
	}
	return n, err
}

func (c *peerConn) Write(p []byte) (int, error) {
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

// divert sends later writes to the control buffer.
func (c *peerConn) divert() {
	c.mu.Lock()
	c.diverted = true
	c.mu.Unlock()
}

// takeControl removes and returns the whole control frames written so far.
func (c *peerConn) takeControl() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := completeFrames(c.ctl)
	if n == 0 {
		return nil
	}
	out := c.ctl[:n:n]
	c.ctl = append([]byte(nil), c.ctl[n:]...)
	return out
}
