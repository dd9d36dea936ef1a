package control

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// ZMTP 3.0 framing, as much as this package needs beyond zmq4's codec.

const (
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

// guardConn is the net.Conn given to zmq4.Open.
//
// Reading, it parses the ZMTP frames zmq4 will see and rewrites any user
// message larger than limit (bodies plus frameOverhead per frame) into
// empty frames, reading through and dropping the original bytes, so zmq4
// never sizes a buffer for them; the message's number is remembered for
// [guardConn.oversized], so the reader can answer it. A command frame over
// the limit, or a frame over discardFactor times it, fails the read.
//
// Writing, it is a [zmtpguard.Diverter]: once diverted after the handshake,
// zmq4's own writes (a PONG answering a PING) wait in a buffer that the
// connection's writer goroutine sends between whole messages.
type guardConn struct {
	*zmtpguard.Diverter
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
}

func newGuardConn(nc net.Conn, limit int) *guardConn {
	return &guardConn{
		Diverter: zmtpguard.NewDiverter(nc),
		limit:    uint64(limit),
		br:       bufio.NewReaderSize(nc, 16<<10),
		greet:    zmtpguard.GreetingLen,
		big:      make(map[uint64]uint64),
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
	if flags&zmtpguard.FlagLong != 0 {
		if _, err := io.ReadFull(c.br, c.hdr[2:9]); err != nil {
			return err
		}
		size, n = binary.BigEndian.Uint64(c.hdr[1:9]), 9
	}
	more := flags&zmtpguard.FlagMore != 0
	if flags&zmtpguard.FlagCommand != 0 {
		if size > c.limit {
			return fmt.Errorf("%w: a %d-byte command", errInboundTooLarge, size)
		}
		c.msgCmd = true
	} else if c.over || size > c.limit || c.msgSize+size+frameOverhead > c.limit {
		// (size first: near 2^64 the sum would wrap around.)
		if size > discardFactor*c.limit {
			return fmt.Errorf("%w: a %d-byte frame", errInboundTooLarge, size)
		}
		if !c.over {
			c.over, c.overLen = true, c.msgBody
			// The first oversized frame becomes an empty one that keeps
			// its MORE flag; later ones vanish until the last, which is
			// also an empty frame, so the message stays well formed.
			c.out = append(c.out[:0], flags&zmtpguard.FlagMore, 0)
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
