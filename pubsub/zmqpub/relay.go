package zmqpub

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// RelayOptions configures [NewRelay]. The zero value is the default.
type RelayOptions struct {
	// Depth is how many events the Relay's Bus subscription holds for the
	// Sink; 0 means 16384, enough for a burst such as every worker of a
	// large pool dying at once. Beyond it events are dropped and counted,
	// never waited for.
	Depth int
	// ReportEvery is how often, at most, drops are logged; 0 means 10s.
	ReportEvery time.Duration
	// Logger receives the drop reports; nil discards them.
	Logger *slog.Logger
	// Await holds the events back (in the subscription, Depth of them)
	// until that many subscribers have subscribed, or AwaitMax has
	// passed: an arbiter upgraded in place awaits the subscribers its old
	// image had, which reconnect by themselves, so that none misses the
	// first events of the new image. 0: forward at once.
	Await    int
	AwaitMax time.Duration
}

// Relay is the arbiter's event stream: it forwards every event of a
// [pubsub.Bus] to a [Sink] in a goroutine of its own, and logs, at most
// once per ReportEvery, the events slow subscribers lost since the last
// report (a subscriber learns it from the gaps in seq, the operator from
// this). It owns the Sink from NewRelay on.
type Relay struct {
	sink *Sink
	sub  *pubsub.Subscription
	stop chan struct{}
	wg   sync.WaitGroup
}

// NewRelay subscribes to bus and starts forwarding to sink.
func NewRelay(bus *pubsub.Bus, sink *Sink, o RelayOptions) *Relay {
	if o.Depth <= 0 {
		o.Depth = 16384
	}
	if o.ReportEvery <= 0 {
		o.ReportEvery = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Relay{sink: sink, sub: bus.Subscribe(o.Depth), stop: make(chan struct{})}
	r.wg.Go(func() {
		r.await(o.Await, o.AwaitMax)
		_ = Forward(context.Background(), r.sub, sink)
	})
	r.wg.Go(func() { r.reportDrops(o.Logger, o.ReportEvery) })
	return r
}

// Close forwards what the subscription still holds, then closes the Sink.
func (r *Relay) Close() error {
	close(r.stop)
	r.sub.Close()
	r.wg.Wait()
	return r.sink.Close()
}

// await returns once n subscribers have subscribed, max has passed, or
// the Relay is closing.
func (r *Relay) await(n int, max time.Duration) {
	if n <= 0 {
		return
	}
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for r.sink.subscribed() < n {
		select {
		case <-r.stop:
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
}

// Subscribed is how many subscribers have subscribed to something.
func (r *Relay) Subscribed() int { return r.sink.subscribed() }

// Dropped returns how many events the Sink's subscribers lost to full
// send queues since Listen, all of them together. It does not block.
func (r *Relay) Dropped() uint64 { return r.sink.dropped.Load() }

func (r *Relay) reportDrops(log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastBus, lastSink uint64
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		st := r.sink.Stats()
		busDropped := r.sub.Dropped()
		if st.Dropped == lastSink && busDropped == lastBus {
			continue
		}
		var slow []string
		for _, p := range st.Peers {
			if p.Dropped > 0 {
				slow = append(slow, fmt.Sprintf("%s dropped %d", p.Remote, p.Dropped))
			}
		}
		log.Warn("events dropped for slow subscribers", "since_last", st.Dropped-lastSink,
			"total", st.Dropped, "subscribers", slow, "dropped_before_the_endpoint", busDropped)
		lastSink, lastBus = st.Dropped, busDropped
	}
}

// Flush waits, until ctx is done, for every event published so far to be
// handed to the subscribers' connections (the kernel has it, or the
// subscriber is gone): before an upgrade in place execs, so that a
// subscriber misses nothing the old image published. It reports whether
// everything went out.
func (r *Relay) Flush(ctx context.Context) bool {
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	// Twice in a row: the forwarder may hold one event between the
	// subscription and the queues.
	for empty := 0; ; {
		if r.sub.Len() == 0 && r.sink.queued() == 0 {
			if empty++; empty == 2 {
				return true
			}
		} else {
			empty = 0
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
}
