package pubsub

import (
	"sync"
	"testing"
)

func TestBusSeqOrder(t *testing.T) {
	t.Parallel()
	b := NewBus()
	s := b.Subscribe(10)
	defer s.Close()
	for range 5 {
		b.Publish(Event{Kind: Spawn, Watcher: "web"})
	}
	for want := uint64(1); want <= 5; want++ {
		ev := <-s.C()
		if ev.Seq != want {
			t.Fatalf("event Seq = %d, want %d", ev.Seq, want)
		}
		if ev.Time.IsZero() {
			t.Errorf("event %d: Time not set by Publish", ev.Seq)
		}
	}
	if got := b.Seq(); got != 5 {
		t.Errorf("Seq() = %d, want 5", got)
	}
}

// Many publishers at once: every subscriber sees 1..N in order, no gaps.
func TestBusConcurrentPublishers(t *testing.T) {
	t.Parallel()
	const publishers, each = 8, 2000
	const total = publishers * each
	b := NewBus()
	subs := []*Subscription{b.Subscribe(total), b.Subscribe(total)}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range each {
				b.Publish(Event{Kind: Reap, Watcher: "w", Pid: p*each + i})
			}
		})
	}
	wg.Wait()
	for i, s := range subs {
		s.Close()
		var n uint64
		for ev := range s.C() {
			n++
			if ev.Seq != n {
				t.Fatalf("subscription %d: event %d has Seq %d", i, n, ev.Seq)
			}
		}
		if n != total || s.Dropped() != 0 {
			t.Errorf("subscription %d: got %d events, %d dropped; want %d, 0", i, n, s.Dropped(), total)
		}
	}
}

// A subscription that is not read loses events, counted, and nobody else does.
func TestBusSlowSubscription(t *testing.T) {
	t.Parallel()
	b := NewBus()
	slow := b.Subscribe(3)
	defer slow.Close()
	fast := b.Subscribe(1)
	defer fast.Close()
	for i := range 100 {
		b.Publish(Event{Kind: Spawn, Watcher: "w", Pid: i})
		ev := <-fast.C()
		if ev.Seq != uint64(i+1) {
			t.Fatalf("fast got Seq %d, want %d", ev.Seq, i+1)
		}
	}
	if got := slow.Dropped(); got != 97 {
		t.Errorf("slow.Dropped() = %d, want 97", got)
	}
	if got := fast.Dropped(); got != 0 {
		t.Errorf("fast.Dropped() = %d, want 0", got)
	}
	// The Bus's total counts every subscription's losses and keeps a
	// closed one's.
	gone := b.Subscribe(1)
	for range 2 {
		b.Publish(Event{Kind: Spawn})
		<-fast.C()
	}
	gone.Close()
	if got := b.Dropped(); got != 97+2+1 {
		t.Errorf("b.Dropped() = %d, want %d", got, 97+2+1)
	}
	for want := uint64(1); want <= 3; want++ {
		if ev := <-slow.C(); ev.Seq != want {
			t.Errorf("slow got Seq %d, want %d", ev.Seq, want)
		}
	}
}

func TestSubscriptionClose(t *testing.T) {
	t.Parallel()
	b := NewBus()
	s := b.Subscribe(4)
	b.Publish(Event{Kind: Start, Watcher: "w"})
	s.Close()
	s.Close()                                  // twice is fine
	b.Publish(Event{Kind: Stop, Watcher: "w"}) // not delivered, no panic
	var got []uint64
	for ev := range s.C() {
		got = append(got, ev.Seq)
	}
	if len(got) != 1 || got[0] != 1 {
		t.Errorf("after Close, C yielded Seqs %v, want [1]", got)
	}
	if s.Dropped() != 0 {
		t.Errorf("Dropped() = %d after Close, want 0", s.Dropped())
	}
}

// A Bus continued from n numbers its next event n+1: an arbiter upgraded in
// place goes on from its old image's last number.
func TestBusContinue(t *testing.T) {
	b := NewBus()
	s := b.Subscribe(4)
	defer s.Close()
	b.Continue(41)
	b.Publish(Event{Kind: Start})
	if ev := <-s.C(); ev.Seq != 42 || b.Seq() != 42 {
		t.Fatalf("first event after Continue(41): seq %d, Bus.Seq %d; want 42", ev.Seq, b.Seq())
	}
}
