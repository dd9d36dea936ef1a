package pubsub

import (
	"testing"
	"time"
)

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

// BenchmarkRender measures Topic plus Body for a reap event.
func BenchmarkRender(b *testing.B) {
	ev := Event{Kind: Reap, Watcher: "Web Srv", Pid: 12345, ExitCode: -15, Time: time.Now(), Seq: 99}
	b.ReportAllocs()
	for b.Loop() {
		_ = Topic(ev)
		_ = Body(ev)
	}
}
