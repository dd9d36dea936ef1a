package main

import (
	"context"
	"fmt"
	"io"

	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// listen prints every event whose topic starts with one of topics (all
// when none) as "topic: body", as Circus's circusctl listen does, until ctx
// is done.
func listen(ctx context.Context, endpoint string, topics []string, out io.Writer) error {
	c, err := zmqpub.Dial(ctx, endpoint, topics...)
	if err != nil {
		return err
	}
	defer c.Close()
	for {
		topic, body, err := c.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("listen %s: %w", endpoint, err)
		}
		if _, err := fmt.Fprintf(out, "%s: %s\n", topic, body); err != nil {
			return err
		}
	}
}
