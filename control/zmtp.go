package control

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// ZMTP 3.0 framing, as much as this package needs beyond zmq4's codec.

const (
	flagMore    = 0x01
	flagLong    = 0x02
	flagCommand = 0x04
	greetingLen = 64 // the ZMTP 3.0 greeting zmq4 reads in one piece

	// frameOverhead is what each inbound frame costs against the message
	// limit beyond its body, so that a message of a million empty frames
	// is as oversized as a million-byte one (zmq4 keeps a slice entry per
	// frame).
	frameOverhead = 32
	// discardFactor times the limit is the largest frame read through and
	// dropped to answer "too large"; a peer declaring more loses its
	// connection at once.
	discardFactor = 16
)

var errInboundTooLarge = errors.New("inbound ZMTP frame too large")

// appendFrame appends one ZMTP frame: header and body.
func appendFrame(b []byte, flags byte, body []byte) []byte {
	if len(body) > 255 {
		b = append(b, flags|flagLong)
		b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
	} else {
		b = append(b, flags, byte(len(body)))
	}
	return append(b, body...)
}

// completeFrames returns the length of the longest prefix of b made of
// whole frames.
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

// guardConn is the net.Conn given to zmq4.Open.
//
// Reading, it parses the ZMTP frames zmq4 will see and rewrites any user
// message larger than limit (bodies plus frameOverhead per frame) into
// empty frames, reading through and dropping the original bytes, so zmq4
// never sizes a buffer for them; the message's number is remembered for
// [guardConn.oversized], so the reader can answer it. A command frame over
// the limit, or a frame over discardFactor times it, fails the read.
//
// Writing, once diverted after the handshake, it keeps zmq4's own writes (a
// PONG answering a PING) in a buffer that the connection's writer goroutine
// sends between whole messages, so they never interleave with ours.
type guardConn struct {
	net.Conn
	limit uint64

	// Read state, touched only by the goroutine reading (handshake, then
	// the reader).
	br      *bufio.Reader
	out     []byte // rewritten header bytes not yet handed to zmq4
	hdr     [9]byte
	greet   int    // greeting bytes still to pass
	body    uint64 // body bytes of the current frame still to pass
	drop    uint64 // body bytes of the current frame still to discard
	msgSize uint64 // cost of the current message so far
	msgBody uint64 // body bytes of the current message so far
	msgCmd  bool   // the current message is a command
	over    bool   // the current message is oversized
	overLen uint64 // its declared size
	msgs    uint64 // user messages completed
	big     map[uint64]uint64

	mu       sync.Mutex
	diverted bool   // after the handshake: writes go to ctl
	ctl      []byte // frames zmq4 wrote, for the writer goroutine
	kick     chan struct{}
}

func newGuardConn(nc net.Conn, limit int) *guardConn {
	return &guardConn{
		Conn:  nc,
		limit: uint64(limit),
		br:    bufio.NewReaderSize(nc, 16<<10),
		greet: greetingLen,
		big:   make(map[uint64]uint64),
		kick:  make(chan struct{}, 1),
	}
}

func (c *guardConn) Read(p []byte) (int, error) {
	for {
		switch {
		case len(c.out) > 0:
			n := copy(p, c.out)
			c.out = c.out[n:]
			return n, nil
		case c.greet > 0:
			n, err := c.br.Read(p[:min(len(p), c.greet)])
			c.greet -= n
			return n, err
		case c.body > 0:
			n, err := c.br.Read(p[:min(uint64(len(p)), c.body)])
			c.body -= uint64(n)
			return n, err
		case c.drop > 0:
			n, err := c.br.Discard(int(min(c.drop, 1<<20)))
			c.drop -= uint64(n)
			if err != nil {
				return 0, err
			}
		default:
			if err := c.header(); err != nil {
				return 0, err
			}
		}
	}
}

// header reads one frame header and decides what zmq4 sees of the frame.
func (c *guardConn) header() error {
	if _, err := io.ReadFull(c.br, c.hdr[:2]); err != nil {
		return err
	}
	flags, size, n := c.hdr[0], uint64(c.hdr[1]), 2
	if flags&flagLong != 0 {
		if _, err := io.ReadFull(c.br, c.hdr[2:9]); err != nil {
			return err
		}
		size, n = binary.BigEndian.Uint64(c.hdr[1:9]), 9
	}
	more := flags&flagMore != 0
	if flags&flagCommand != 0 {
		if size > c.limit {
			return fmt.Errorf("%w: a %d-byte command", errInboundTooLarge, size)
		}
		c.msgCmd = true
	} else if c.over || c.msgSize+size+frameOverhead > c.limit {
		if size > discardFactor*c.limit {
			return fmt.Errorf("%w: a %d-byte frame", errInboundTooLarge, size)
		}
		if !c.over {
			c.over, c.overLen = true, c.msgBody
			// The first oversized frame becomes an empty one that keeps
			// its MORE flag; later ones vanish until the last, which is
			// also an empty frame, so the message stays well formed.
			c.out = append(c.out[:0], flags&flagMore, 0)
		} else if !more {
			c.out = append(c.out[:0], 0, 0)
		}
		c.overLen += size
		c.drop = size
		if !more {
			c.endMessage()
		}
		return nil
	}
	c.msgSize += size + frameOverhead
	c.msgBody += size
	c.out = append(c.out[:0], c.hdr[:n]...)
	c.body = size
	if !more {
		c.endMessage()
	}
	return nil
}

func (c *guardConn) endMessage() {
	if !c.msgCmd {
		if c.over {
			c.big[c.msgs] = c.overLen
		}
		c.msgs++
	}
	c.msgSize, c.msgBody, c.msgCmd, c.over, c.overLen = 0, 0, false, false, 0
}

// oversized reports whether user message number i (from 0, in the order
// zmq4's RecvMsg returns them) was too large, and its declared size. Only
// the reading goroutine may call it.
func (c *guardConn) oversized(i uint64) (uint64, bool) {
	n, ok := c.big[i]
	if ok {
		delete(c.big, i)
	}
	return n, ok
}

func (c *guardConn) Write(p []byte) (int, error) {
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
func (c *guardConn) divert() {
	c.mu.Lock()
	c.diverted = true
	c.mu.Unlock()
}

// takeControl removes and returns the whole control frames written so far.
func (c *guardConn) takeControl() []byte {
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
