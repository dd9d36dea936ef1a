package web

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/control"
)

const (
	writeWait  = 10 * time.Second // a browser that takes no data for this long is dropped
	pingEvery  = 20 * time.Second
	readWait   = 3 * pingEvery // no pong (or message) for this long: the peer is gone
	maxRequest = 64 << 10      // a control request is a few hundred bytes
	maxPending = 8             // commands in flight per page; more are refused, not queued
)

// Close codes the page acts on. 4008 (like HTTP 408) tells it that it fell
// behind and should reconnect, resuming from its last seq.
const (
	closeTooSlow = 4008
)

// client is one connected page. The hub sends it broadcast messages and
// command goroutines send it replies, both through offer, which never
// blocks: a full queue means the page is too slow, and it is dropped.
// Its writer goroutine is the only one that writes (gorilla/websocket
// allows one writer) and the one that closes the connection, so that
// dropping a page never waits on its socket.
type client struct {
	conn  *websocket.Conn
	send  chan []byte
	slots chan struct{} // one per command in flight
	done  chan struct{} // closed by kick
	once  sync.Once
	// closeMsg is the close frame kick chose, set before done is closed.
	closeMsg []byte
	// finishing asks the writer to send what is queued, then close: the
	// arbiter is shutting down, and its last events should reach the page.
	finishing chan struct{}
	finOnce   sync.Once
}

func newClient(conn *websocket.Conn, queue int) *client {
	return &client{
		conn:  conn,
		send:  make(chan []byte, queue),
		slots: make(chan struct{}, maxPending),
		done:  make(chan struct{}),

		finishing: make(chan struct{}),
	}
}

// offer queues b for the page, or drops the page if its queue is full.
// It reports whether b was queued.
func (c *client) offer(b []byte) bool {
	select {
	case <-c.done:
		return false
	default:
	}
	select {
	case c.send <- b:
		return true
	default:
		c.kick(closeTooSlow, "too slow: reconnect to resume")
		return false
	}
}

// kick ends the connection with a close frame saying why. It never blocks
// (the hub calls it): it wakes the writer, cutting short a write stuck on a
// full socket with a deadline in the past, and the writer sends the frame
// and closes. Safe to call more than once and from any goroutine.
func (c *client) kick(code int, reason string) {
	c.once.Do(func() {
		c.closeMsg = websocket.FormatCloseMessage(code, reason)
		close(c.done)
		_ = c.conn.UnderlyingConn().SetWriteDeadline(time.Now())
	})
}

// hangUp sends kick's close frame, if the socket takes it at once, and
// closes the connection, which ends the reader too.
func (c *client) hangUp() {
	<-c.done
	_ = c.conn.WriteControl(websocket.CloseMessage, c.closeMsg, time.Now().Add(100*time.Millisecond))
	_ = c.conn.Close()
}

// finish makes the writer send what is queued within a second, then close
// the connection as going away.
func (c *client) finish() { c.finOnce.Do(func() { close(c.finishing) }) }

// write sends the queue to the page, and pings it, until kicked; then it
// hangs up.
func (c *client) write() {
	defer c.hangUp()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			return
		case b := <-c.send:
			select {
			case <-c.done:
				return // kicked: no new write that would reset its deadline
			default:
			}
			_ = c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				// After a write error the connection is unusable.
				c.kick(websocket.CloseGoingAway, "write failed")
				return
			}
		case <-c.finishing:
			_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			for len(c.send) > 0 {
				if err := c.conn.WriteMessage(websocket.TextMessage, <-c.send); err != nil {
					break
				}
			}
			c.kick(websocket.CloseGoingAway, "the arbiter is shutting down")
			return
		case <-ping.C:
			if err := c.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.kick(websocket.CloseGoingAway, "ping failed")
				return
			}
		}
	}
}

// read takes the page's commands until the connection ends. Each command
// is accepted here, in arrival order, so that commands on one watcher run in
// the order the page sent them; each waits for its result in a goroutine
// that wg tracks, so that a slow stop never holds up the next click.
// After each command, changed reports the watcher it named (or "" for
// all), so that a change that publishes no event (incr of a stopped
// watcher) still reaches every page at once.
func (c *client) read(ctx context.Context, peer access.Peer, h control.OrderedHandler, wg *sync.WaitGroup, changed func(name string)) {
	c.conn.SetReadLimit(maxRequest)
	_ = c.conn.SetReadDeadline(time.Now().Add(readWait))
	c.conn.SetPongHandler(func(string) error {
		return c.conn.SetReadDeadline(time.Now().Add(readWait))
	})
	for {
		typ, data, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		_ = c.conn.SetReadDeadline(time.Now().Add(readWait))
		if typ != websocket.TextMessage {
			continue
		}
		req, bad := control.DecodeRequest(data)
		req.Peer = peer
		if bad != nil {
			c.reply(req.ID, control.Fail(bad))
			continue
		}
		select {
		case c.slots <- struct{}{}:
		default:
			if !req.IsCast() {
				c.reply(req.ID, control.Failf(control.CommandError, "%d commands are already running for this page; wait for one to finish", maxPending))
			}
			continue
		}
		wait := h.Accept(req)
		wg.Go(func() {
			defer func() { <-c.slots }()
			r := wait(ctx)
			if !req.IsCast() {
				c.reply(req.ID, r)
			}
			if mutating[strings.ToLower(req.Command)] {
				name, _ := req.StringOr("name", "")
				changed(name)
			}
		})
	}
}

// mutating are the commands after which the watcher they name is read
// again; a page polls tail every second, which must not cost a read.
var mutating = map[string]bool{
	"incr": true, "decr": true, "start": true, "stop": true, "restart": true, "reload": true,
	"reloadconfig": true, "set": true, "kill": true, "signal": true, "add": true, "rm": true,
}

func (c *client) reply(id []byte, r control.Reply) {
	bodyID := id
	body, err := r.Render(bodyID, time.Now())
	if err == nil && !json.Valid(body) {
		// Render writes Python's JSON, as Circus does, where a number
		// beyond float64 (an id of 1e400) is Infinity; JSON.parse refuses
		// it. The page matches on the envelope's id, which is as sent.
		err, bodyID = errors.New("a number beyond JSON's range"), nil
	}
	if err != nil {
		body, _ = control.Failf(control.CommandError, "reply not renderable: %v", err).Render(bodyID, time.Now())
	}
	c.offer(envelope("reply", 0, "id", rawOrNull(id), "reply", rawOrNull(body)))
}

func rawOrNull(b []byte) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return json.RawMessage(b)
}
