package pubsub

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
	bus := NewBus()
	bs := bus.Subscribe(10_000)
	ctx, cancel := context.WithCancel(context.Background())
	var fwd sync.WaitGroup
	fwd.Go(func() { Forward(ctx, bs, s) })

	ev := Event{Kind: Reap, Watcher: "web", Pid: 12345, ExitCode: -15}
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

// BenchmarkBusPublish measures Bus.Publish with 10 subscriptions that have
// room (they are drained, off the clock, every 1000 events), so the figure
// is numbering plus ten channel sends, without scheduler noise.
func BenchmarkBusPublish(b *testing.B) {
	bus := NewBus()
	var subs []*Subscription
	for range 10 {
		subs = append(subs, bus.Subscribe(1000))
	}
	ev := Event{Kind: Reap, Watcher: "web", Pid: 12345, ExitCode: -15, Time: time.Now()}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%1000 == 0 {
			b.StopTimer()
			for _, s := range subs {
				for len(s.C()) > 0 {
					<-s.C()
				}
			}
			b.StartTimer()
		}
		bus.Publish(ev)
	}
	b.StopTimer()
	var drops uint64
	for _, s := range subs {
		drops += s.Dropped()
		s.Close()
	}
	b.ReportMetric(float64(drops), "drops")
}

// BenchmarkBusPublishAllFull is the drop path: 10 subscriptions nobody
// reads, so every send fails and is counted.
func BenchmarkBusPublishAllFull(b *testing.B) {
	bus := NewBus()
	for range 10 {
		defer bus.Subscribe(1).Close()
	}
	ev := Event{Kind: Reap, Watcher: "web", Pid: 12345, ExitCode: -15, Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		bus.Publish(ev)
	}
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
	ev := Event{Kind: Reap, Watcher: "web", Pid: 12345, ExitCode: -15, Time: time.Now(), Seq: 1}
	topic, body := Topic(ev), Body(ev)
	b.ReportAllocs()
	for b.Loop() {
		s.Send(topic, body)
	}
	b.ReportMetric(float64(s.Stats().Dropped), "drops")
	s.Close()
	readers.Wait()
}

// BenchmarkRender measures Topic plus Body for a reap event.
func BenchmarkRender(b *testing.B) {
	ev := Event{Kind: Reap, Watcher: "Web Srv", Pid: 12345, ExitCode: -15, Time: time.Now(), Seq: 99}
	b.ReportAllocs()
	for b.Loop() {
		_ = Topic(ev)
		_ = Body(ev)
	}
}
