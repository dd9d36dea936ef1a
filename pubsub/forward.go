package pubsub

import "context"

// Forward renders each event of sub with [Topic] and [Body] and sends it on
// sink, until ctx is done (it returns ctx.Err()) or sub is closed (it returns
// nil). It is the glue between the arbiter's Bus and its PUB endpoint, run in
// a goroutine its caller owns.
func Forward(ctx context.Context, sub *Subscription, sink *Sink) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-sub.C():
			if !ok {
				return nil
			}
			sink.Send(Topic(ev), Body(ev))
		}
	}
}
