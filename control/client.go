package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// clientMaxReply bounds one reply a [Client] accepts (stats of a big
// arbiter can be large); a larger one ends the connection.
const clientMaxReply = 64 << 20

// clientWriteTimeout bounds each write of requests to the server.
const clientWriteTimeout = 10 * time.Second

// ErrClosed is returned by calls on a [Client] after Close.
var ErrClosed = errors.New("control client closed")

// CallError is an error reply: {"status": "error", "reason": ..., "errno": ...}.
type CallError struct {
	Command string
	Errno   Errno
	Reason  string
}

func (e *CallError) Error() string {
	return fmt.Sprintf("%s: %s (errno %d)", e.Command, e.Reason, int(e.Errno))
}

// Client is a ZeroMQ DEALER talking to a control endpoint (ours or
// circusd's) as Circus's CircusClient does: identity 32 random hex
// characters, one JSON frame per request, replies matched on "id".
//
// It is built on zmq4's connection layer rather than zmq4.NewDealer, for
// the same reasons as the [Server]: the handshake has a deadline, there is
// no reconnect loop sleeping in Dial, and Close leaves no goroutine behind.
// A reader goroutine owns receiving and a writer goroutine owns sending;
// Call and Cast are safe for concurrent use. There is no reconnect: after
// the connection fails every call returns the error.
type Client struct {
	endpoint string
	nc       net.Conn
	gc       *guardConn
	q        chan outgoing
	done     chan struct{} // closed by Close
	dead     chan struct{} // closed when the connection has failed
	wg       sync.WaitGroup

	mu      sync.Mutex
	pending map[string]chan replyMsg // by request id
	err     error                    // why the connection failed
	closed  bool
}

type outgoing struct {
	msg     []byte
	written chan struct{} // closed once written, or nil
}

// Dial connects to endpoint ("tcp://host:port" or "ipc:///path") and does
// the ZMTP handshake, both within timeout.
func Dial(endpoint string, timeout time.Duration) (*Client, error) {
	network, addr, ok := strings.Cut(endpoint, "://")
	switch {
	case !ok:
	case network == "tcp":
	case network == "ipc":
		network = "unix"
	default:
		ok = false
	}
	if !ok || addr == "" {
		return nil, fmt.Errorf("control endpoint %q: want tcp://host:port or ipc:///path", endpoint)
	}
	nc, err := net.DialTimeout(network, addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	gc := newGuardConn(nc, clientMaxReply)
	nc.SetDeadline(time.Now().Add(timeout))
	zc, err := zmq4.Open(gc, null.Security(), zmq4.Dealer, zmq4.SocketIdentity(randomHex()), false, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("dial %s: handshake: %w", endpoint, err)
	}
	nc.SetDeadline(time.Time{})
	gc.Divert()
	c := &Client{
		endpoint: endpoint,
		nc:       nc,
		gc:       gc,
		q:        make(chan outgoing, 64),
		done:     make(chan struct{}),
		dead:     make(chan struct{}),
		pending:  make(map[string]chan replyMsg),
	}
	c.wg.Go(func() { c.fail(c.read(zc)) })
	c.wg.Go(func() { c.fail(c.write()) })
	return c, nil
}

// randomHex returns 32 random hex characters, as Python's uuid4().hex
// (version bits included).
func randomHex() string {
	var u [16]byte
	rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return hex.EncodeToString(u[:])
}

// Call sends command with props (nil means {}) and waits for its reply or
// for ctx to end. It returns the whole reply object, as sent. An error
// reply is returned as a *CallError (and the reply); any other status,
// including the "active"/"stopped" of status with a name, is success.
func (c *Client) Call(ctx context.Context, command string, props map[string]any) (json.RawMessage, error) {
	id := randomHex()
	msg, err := encodeRequest(id, command, props, "")
	if err != nil {
		return nil, err
	}
	ch := make(chan replyMsg, 1)
	c.mu.Lock()
	if err := c.errLocked(); err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	if err := c.enqueue(ctx, outgoing{msg: msg}); err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	select {
	case r := <-ch:
		return r.raw, r.head.err(command)
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", command, ctx.Err())
	case <-c.dead:
		return nil, fmt.Errorf("%s: %w", command, c.error())
	}
}

// Cast sends command with msg_type "cast", which the server never answers,
// and returns once it is written to the socket.
func (c *Client) Cast(ctx context.Context, command string, props map[string]any) error {
	msg, err := encodeRequest(randomHex(), command, props, "cast")
	if err != nil {
		return err
	}
	o := outgoing{msg: msg, written: make(chan struct{})}
	if err := c.enqueue(ctx, o); err != nil {
		return fmt.Errorf("%s: %w", command, err)
	}
	select {
	case <-o.written:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", command, ctx.Err())
	case <-c.dead:
		return fmt.Errorf("%s: %w", command, c.error())
	}
}

func (c *Client) enqueue(ctx context.Context, o outgoing) error {
	select {
	case c.q <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.dead:
		return c.error()
	}
}

// encodeRequest renders Circus's request frame as one ZMTP message.
func encodeRequest(id, command string, props map[string]any, msgType string) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = append(b, `{"id": `...)
	b = pyjson.AppendString(b, id)
	b = append(b, `, "command": `...)
	b = pyjson.AppendString(b, command)
	b = append(b, `, "properties": `...)
	var err error
	if props == nil {
		b = append(b, "{}"...)
	} else if b, err = appendPy(b, props); err != nil {
		return nil, fmt.Errorf("%s: properties: %w", command, err)
	}
	if msgType != "" {
		b = append(b, `, "msg_type": `...)
		b = pyjson.AppendString(b, msgType)
	}
	b = append(b, '}')
	return zmtpguard.AppendFrame(make([]byte, 0, len(b)+9), 0, b), nil
}

// replyHead is what the client reads of every reply: the id, to find
// the call it answers, and the status. It is decoded once, as the reply
// is received: a reply can be a megabyte (logs), and each pass of
// encoding/json over it costs its reader as much as a pass over every
// line.
type replyHead struct {
	ID     any    `json:"id"`
	Status string `json:"status"`
	Errno  int    `json:"errno"`
	Reason string `json:"reason"`
}

// replyMsg is a reply and its head.
type replyMsg struct {
	raw  json.RawMessage
	head replyHead
}

// err returns the *CallError of an error reply, else nil.
func (h *replyHead) err(command string) error {
	if h.Status != "error" {
		return nil
	}
	return &CallError{Command: command, Errno: Errno(h.Errno), Reason: h.Reason}
}

// read delivers replies to the calls waiting for their id and drops the
// rest, as Circus's client does.
func (c *Client) read(zc *zmq4.Conn) error {
	var n uint64
	for {
		msg, err := zc.RecvMsg()
		if err != nil {
			return err
		}
		if msg.Type != zmq4.UsrMsg {
			continue
		}
		if size, big := c.gc.oversized(n); big {
			return fmt.Errorf("reply of %d bytes, more than the limit of %d", size, clientMaxReply)
		}
		n++
		body := msg.Frames[len(msg.Frames)-1]
		var h replyHead
		if json.Unmarshal(body, &h) != nil {
			continue
		}
		id, _ := h.ID.(string)
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- replyMsg{raw: body, head: h}
		}
	}
}

// write sends queued requests, and any frame zmq4 produced in between.
func (c *Client) write() error {
	for {
		var bufs net.Buffers
		var o outgoing
		select {
		case <-c.done:
			return ErrClosed
		case <-c.dead:
			return nil
		case <-c.gc.Kick():
		case o = <-c.q:
			bufs = append(bufs, o.msg)
		}
		if ctl := c.gc.TakeControl(); ctl != nil {
			bufs = append(bufs, ctl)
		}
		if len(bufs) == 0 {
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(clientWriteTimeout))
		if _, err := bufs.WriteTo(c.nc); err != nil {
			return err
		}
		if o.written != nil {
			close(o.written)
		}
	}
}

// fail records why the connection ended (the first reason wins) and wakes
// every call.
func (c *Client) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	switch {
	case c.closed:
		c.err = ErrClosed
	case err == nil:
		c.err = fmt.Errorf("control connection to %s: lost", c.endpoint)
	default:
		c.err = fmt.Errorf("control connection to %s: %w", c.endpoint, err)
	}
	close(c.dead)
	c.nc.Close() // stops the other goroutine
}

func (c *Client) errLocked() error {
	if c.closed {
		return ErrClosed
	}
	return c.err
}

func (c *Client) error() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return ErrClosed
	}
	return c.err
}

// Close drops the connection (requests not yet written are discarded, as
// with Circus's LINGER 0), fails the calls in flight with ErrClosed, and
// waits for the Client's goroutines. Calling it again returns nil.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.done)
	c.mu.Unlock()
	c.nc.Close()
	c.wg.Wait()
	return nil
}
