package zmqpub

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zeromq/zmq4"
)

// Client subscribes to a ZeroMQ PUB endpoint: Ringmaster's events or stats,
// or Circus's. It is what circusctl listen and top use. A Client is not safe
// for concurrent use.
type Client struct {
	sock zmq4.Socket
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
	return &Client{sock: sock}, nil
}

// Recv returns the next message's topic and body. It blocks until one
// arrives or the Dial context is done.
func (c *Client) Recv() (topic string, body []byte, err error) {
	msg, err := c.sock.Recv()
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
func (c *Client) Close() error { return c.sock.Close() }
