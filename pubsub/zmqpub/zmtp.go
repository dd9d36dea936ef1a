package zmqpub

import (
	"errors"
	"net"

	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// ZMTP 3.0 framing, as much as the sink needs beyond zmq4's codec.

const (
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
	b = zmtpguard.AppendFrameHeader(b, zmtpguard.FlagMore, len(topic))
	b = append(b, topic...)
	b = zmtpguard.AppendFrameHeader(b, 0, len(body))
	return append(b, body...)
}

// peerConn is the net.Conn given to zmq4.Open. It guards reads with a
// running ZMTP frame parser that refuses oversized frames before zmq4 sizes
// a buffer for them. Writing, it is a [zmtpguard.Diverter]: once the
// handshake is over, zmq4's own writes (a PONG answering a heartbeat PING)
// wait in a buffer that the peer's writer goroutine sends between whole
// messages, so that they never interleave with event frames on the wire.
type peerConn struct {
	*zmtpguard.Diverter

	// Read state, touched only by the goroutine reading (handshake, then reader).
	skip     int    // greeting bytes, or body bytes of the current frame, still to pass
	sizeLeft int    // length bytes of the current frame header still to read
	size     uint64 // the length being read
	flags    byte   // flags of the current frame
	msgSize  uint64 // bytes in the current message so far
	inHeader bool   // the next byte is a flags byte
}

func newPeerConn(nc net.Conn) *peerConn {
	return &peerConn{Diverter: zmtpguard.NewDiverter(nc), skip: zmtpguard.GreetingLen}
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
			if c.flags&zmtpguard.FlagLong != 0 {
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
			if c.flags&zmtpguard.FlagMore == 0 {
				c.msgSize = 0
			}
			c.skip = int(c.size)
			c.inHeader = c.skip == 0
		}
	}
	return n, err
}
