package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

// events is the arbiter's event stream: the Bus every layer publishes to,
// and the ZeroMQ PUB endpoint that renders it as Circus does.
type events struct {
	bus  *pubsub.Bus
	sink *zmqpub.Sink
	sub  *pubsub.Subscription
	stop chan struct{}
	wg   sync.WaitGroup
}

// startEvents binds [circus] pubsub_endpoint and forwards the Bus to it.
// A failure names the config line.
func startEvents(cfg *config.Config, log *slog.Logger) (*events, error) {
	sink, err := zmqpub.Listen(cfg.Circus.PubsubEndpoint, zmqpub.SinkOptions{Logger: log.With("endpoint", "pubsub")})
	if err != nil {
		return nil, configErr(cfg, "pubsub_endpoint", err)
	}
	e := &events{bus: pubsub.NewBus(), sink: sink, stop: make(chan struct{})}
	// Deep enough for a burst (every worker of a large pool dying at once);
	// beyond it events are dropped and counted, never waited for.
	e.sub = e.bus.Subscribe(16384)
	e.wg.Go(func() { _ = zmqpub.Forward(context.Background(), e.sub, sink) })
	e.wg.Go(func() { e.reportDrops(log, 10*time.Second) })
	log.Info("publishing events", "endpoint", sink.Addr())
	return e, nil
}

// reportDrops logs, at most once per interval, the events that slow
// subscribers lost since the last report: a subscriber that misses events
// learns it from the gaps in their seq, the operator from this.
func (e *events) reportDrops(log *slog.Logger, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastBus, lastSink uint64
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
		}
		st := e.sink.Stats()
		busDropped := e.sub.Dropped()
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

// Close forwards what the Bus still holds, then closes the endpoint.
func (e *events) Close() {
	close(e.stop)
	e.sub.Close()
	e.wg.Wait()
	e.sink.Close()
}

// configErr attaches the [circus] key's position to err.
func configErr(cfg *config.Config, key string, err error) error {
	pos := cfg.Pos("circus", key)
	return &config.Error{File: pos.File, Line: pos.Line, Section: "circus", Key: key, Msg: err.Error()}
}

// listenStats binds [circus] stats_endpoint when statsd is on (nil
// otherwise). It is bound before the arbiter's own sockets, so that a
// failure leaves nothing behind.
func listenStats(cfg *config.Config, log *slog.Logger) (*zmqpub.Sink, error) {
	if !cfg.Circus.Statsd {
		return nil, nil
	}
	sink, err := zmqpub.Listen(cfg.Circus.StatsEndpoint, zmqpub.SinkOptions{Logger: log.With("endpoint", "stats")})
	if err != nil {
		return nil, configErr(cfg, "stats_endpoint", err)
	}
	return sink, nil
}

// runStats publishes stat.* on sink once a second, as circusd-stats does.
// The returned stop ends it and closes sink. Stats are an extra: when they
// cannot start, the arbiter runs without them and says why.
// The sampler is the stream's, for the stats commands to share; nil when
// there is no stream.
func runStats(sink *zmqpub.Sink, a *arbiter.Arbiter, log *slog.Logger) (stop func(), sampler *stats.Sampler) {
	if sink == nil {
		return func() {}, nil
	}
	p, err := stats.New(stats.FromArbiter(a), sink, time.Second)
	if err != nil {
		log.Error("stats disabled", "err", err)
		sink.Close()
		return func() {}, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.Run(ctx) })
	log.Info("publishing stats", "endpoint", sink.Addr())
	return func() {
		cancel()
		wg.Wait()
		sink.Close()
	}, p.Sampler()
}
