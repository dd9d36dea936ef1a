package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

// subscribers lets subscribe those who may read: events name commands,
// their properties and who sent them; stats name every worker.
func subscribers(late *commands.Late, log *slog.Logger) zmqpub.SinkOptions {
	return zmqpub.SinkOptions{
		Logger:   log,
		Identify: access.Identify,
		Admit:    func(p access.Peer) error { return late.Check(p, "status") },
	}
}

// startEvents binds [circus] pubsub_endpoint and relays a new Bus to it,
// once await subscribers are back (an upgraded arbiter awaits those its
// old image had, for a second at most). A failure names the config line.
func startEvents(cfg *config.Config, late *commands.Late, log *slog.Logger, await int) (*pubsub.Bus, *zmqpub.Relay, error) {
	sink, err := zmqpub.Listen(cfg.Circus.PubsubEndpoint, subscribers(late, log.With("endpoint", "pubsub")))
	if err != nil {
		return nil, nil, cfg.KeyError("circus", "pubsub_endpoint", err)
	}
	bus := pubsub.NewBus()
	relay := zmqpub.NewRelay(bus, sink, zmqpub.RelayOptions{Logger: log, Await: await, AwaitMax: time.Second})
	log.Info("publishing events", "endpoint", sink.Addr())
	return bus, relay, nil
}

// listenStats binds [circus] stats_endpoint when statsd is on (nil
// otherwise). It is bound before the arbiter's own sockets, so that a
// failure leaves nothing behind.
func listenStats(cfg *config.Config, late *commands.Late, log *slog.Logger) (*zmqpub.Sink, error) {
	if !cfg.Circus.Statsd {
		return nil, nil
	}
	sink, err := zmqpub.Listen(cfg.Circus.StatsEndpoint, subscribers(late, log.With("endpoint", "stats")))
	if err != nil {
		return nil, cfg.KeyError("circus", "stats_endpoint", err)
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
