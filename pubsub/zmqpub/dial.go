package zmqpub

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Client subscribes to a ZeroMQ PUB endpoint: Ringmaster's events or stats,
// or Circus's. It is what circusctl listen and top use. A Client is not safe
// for concurrent use.
type Client struct {
	sock   zmq4.Socket
	ctx    context.Context
	closed atomic.Bool
}

// Dial connects a SUB socket to endpoint (tcp:// or ipc://) and subscribes
// to topics, each a prefix; none means everything. It reconnects on its own
// if the publisher restarts. Events published before the subscription
// reaches the publisher are not received (ZeroMQ has no replay).
func Dial(ctx context.Context, endpoint string, topics ...string) (*Client, error) {
	sock := zmq4.NewSub(ctx, zmq4.WithAutomaticReconnect(true))
	if err := sock.Dial(endpoint); err != nil {
		sock.Close()
		return nil, fmt.Errorf("subscribe to %s: %w", endpoint, err)
	}
	if len(topics) == 0 {
		topics = []string{""}
	}
	for _, t := range topics {
		if err := sock.SetOption(zmq4.OptionSubscribe, t); err != nil {
			sock.Close()
			return nil, fmt.Errorf("subscribe to %s topic %q: %w", endpoint, t, err)
		}
	}
	return &Client{sock: sock, ctx: ctx}, nil
}

// Recv returns the next message's topic and body. It blocks until one
// arrives or the Dial context is done, across the end of the publisher's
// connection: an arbiter restarted, or upgraded in place, whose events
// come again once the socket has dialled and subscribed anew.
func (c *Client) Recv() (topic string, body []byte, err error) {
	msg, err := c.sock.Recv()
	for errors.Is(err, io.EOF) && c.ctx.Err() == nil && !c.closed.Load() {
		// zmq4 reports the connection that ended, once, and dials again
		// by itself; a short pause keeps a publisher that keeps closing
		// from making this a busy loop.
		select {
		case <-c.ctx.Done():
		case <-time.After(reconnectPause):
		}
		msg, err = c.sock.Recv()
	}
	if err != nil {
		return "", nil, err
	}
	switch len(msg.Frames) {
	case 0:
		return "", nil, errors.New("empty message")
	case 1:
		return string(msg.Frames[0]), nil, nil
	}
	return string(msg.Frames[0]), msg.Frames[1], nil
}

// Close disconnects.
func (c *Client) Close() error {
	c.closed.Store(true)
	return c.sock.Close()
}

// reconnectPause is Recv's pause after the publisher's connection ended.
const reconnectPause = 10 * time.Millisecond
