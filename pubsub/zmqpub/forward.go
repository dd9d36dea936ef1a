package zmqpub

import (
	"context"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Forward renders each event of sub with [Topic] and [Body] and sends it on
// sink, until ctx is done (it returns ctx.Err()) or sub is closed (it returns
// nil). It is the glue between the arbiter's Bus and its PUB endpoint, run in
// a goroutine its caller owns.
func Forward(ctx context.Context, sub *pubsub.Subscription, sink *Sink) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-sub.C():
			if !ok {
				return nil
			}
			sink.Send(pubsub.Topic(ev), pubsub.Body(ev))
		}
	}
}
