package zmqpub

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// BenchmarkFanout10kPerSec publishes b.N reap events on a Bus at 10,000
// events/s (10 per millisecond tick), forwarded to a Sink with 10 zmq4 SUB
// subscribers. ns/op is therefore about 100µs by construction; the figures
// that matter are the metrics: publish-ns (mean cost of Bus.Publish, what the
// arbiter's loop pays), max-publish-µs, drops, and got-all (1 if every
// subscriber received every event).
func BenchmarkFanout10kPerSec(b *testing.B) {
	const subscribers, perTick = 10, 10
	s := listen(b, SinkOptions{})
	var counts [subscribers]atomic.Int64
	var readers sync.WaitGroup
	for i := range subscribers {
		sub := goSub(b, s.Addr(), "watcher.")
		readers.Go(func() {
			for {
				if _, err := sub.Recv(); err != nil {
					return
				}
				counts[i].Add(1)
			}
		})
	}
	waitSubscribed(b, s, subscribers, 1)
	bus := pubsub.NewBus()
	bs := bus.Subscribe(10_000)
	ctx, cancel := context.WithCancel(context.Background())
	var fwd sync.WaitGroup
	fwd.Go(func() { Forward(ctx, bs, s) })

	ev := pubsub.Event{Kind: pubsub.Reap, Watcher: "web", Pid: 12345, ExitCode: -15}
	var spent, worst time.Duration
	tick := time.NewTicker(time.Millisecond)
	b.ResetTimer()
	for n := 0; n < b.N; {
		<-tick.C
		for range min(perTick, b.N-n) {
			t0 := time.Now()
			bus.Publish(ev)
			d := time.Since(t0)
			spent += d
			worst = max(worst, d)
			n++
		}
	}
	b.StopTimer()
	tick.Stop()
	deadline := time.Now().Add(30 * time.Second)
	all := func() bool {
		for i := range counts {
			if counts[i].Load() < int64(b.N) {
				return false
			}
		}
		return true
	}
	for !all() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	gotAll := 0.0
	if all() {
		gotAll = 1
	}
	cancel()
	fwd.Wait()
	bs.Close()
	st := s.Stats()
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "publish-ns")
	b.ReportMetric(float64(worst.Microseconds()), "max-publish-µs")
	b.ReportMetric(float64(st.Dropped+bs.Dropped()), "drops")
	b.ReportMetric(gotAll, "got-all")
	s.Close() // ends the readers' Recv with an error
	readers.Wait()
}

// BenchmarkSinkSend measures Sink.Send (render not included) with 10
// subscribers, unpaced: it shows the cost of a Send, including the drops
// when subscribers fall behind.
func BenchmarkSinkSend(b *testing.B) {
	s := listen(b, SinkOptions{})
	var readers sync.WaitGroup
	for range 10 {
		sub := goSub(b, s.Addr(), "")
		readers.Go(func() {
			for {
				if _, err := sub.Recv(); err != nil {
					return
				}
			}
		})
	}
	waitSubscribed(b, s, 10, 1)
	ev := pubsub.Event{Kind: pubsub.Reap, Watcher: "web", Pid: 12345, ExitCode: -15, Time: time.Now(), Seq: 1}
	topic, body := pubsub.Topic(ev), pubsub.Body(ev)
	b.ReportAllocs()
	for b.Loop() {
		s.Send(topic, body)
	}
	b.ReportMetric(float64(s.Stats().Dropped), "drops")
	s.Close()
	readers.Wait()
}
