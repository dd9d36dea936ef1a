package pubsub

import (
	"sync"
	"sync/atomic"
	"time"
)

// Bus is the in-process, bounded, never-blocking fan-out of events. The
// arbiter publishes to it; the ZeroMQ sink (through [Forward]), the web
// console and the stats stream each read their own [Subscription].
//
// A Bus has no goroutines of its own. The zero value is not usable; call
// [NewBus].
type Bus struct {
	seq     atomic.Uint64 // last assigned; written only with mu held
	dropped atomic.Uint64 // by every subscription, closed ones included

	mu   sync.Mutex // serialises numbering and delivery, so each subscription sees Seq order
	subs []*Subscription
}

// NewBus returns an empty Bus.
func NewBus() *Bus { return &Bus{} }

// Publish numbers ev (Seq 1, 2, ... without gaps, in the order Publish calls
// take the Bus's lock) and hands it to every subscription without blocking:
// a subscription whose buffer is full loses the event and counts it in
// [Subscription.Dropped]. A zero ev.Time is set to the current time.
//
// Publish is safe for concurrent use and never blocks on a subscriber; it
// holds a short mutex only for the numbering and the non-blocking sends.
func (b *Bus) Publish(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	b.mu.Lock()
	ev.Seq = b.seq.Add(1)
	for _, s := range b.subs {
		select {
		case s.c <- ev:
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
	b.mu.Unlock()
}

// Continue makes the next event's Seq seq+1: the Bus of an arbiter
// upgraded in place goes on from the last number its old image gave, so
// that subscribers see one sequence across the exec. Call it before the
// first Publish.
func (b *Bus) Continue(seq uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq.Store(seq)
}

// Seq returns the sequence number of the last published event, 0 if none.
func (b *Bus) Seq() uint64 { return b.seq.Load() }

// Dropped returns how many events subscriptions lost to full buffers, all
// of them together, those since closed included: the figure an operator
// watches (each reader learns its own losses from [Subscription.Dropped]).
func (b *Bus) Dropped() uint64 { return b.dropped.Load() }

// Subscribe returns a subscription that receives every event published from
// now on, in Seq order, buffering up to size events (at least 1). Events that
// arrive while the buffer is full are dropped for this subscription alone.
func (b *Bus) Subscribe(size int) *Subscription {
	s := &Subscription{bus: b, c: make(chan Event, max(size, 1))}
	b.mu.Lock()
	b.subs = append(b.subs, s)
	b.mu.Unlock()
	return s
}

// Subscription is one reader's bounded queue on a [Bus].
type Subscription struct {
	bus     *Bus
	c       chan Event // closed by Close, under bus.mu
	dropped atomic.Uint64
	closed  bool // guarded by bus.mu
}

// C returns the channel events arrive on. It is closed by [Subscription.Close].
func (s *Subscription) C() <-chan Event { return s.c }

// Len is how many events wait in the subscription's buffer.
func (s *Subscription) Len() int { return len(s.c) }

// Dropped returns how many events this subscription lost because its buffer
// was full. A reader can also see a loss as a gap in [Event.Seq].
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// Close unsubscribes and closes C; events already buffered can still be
// read. Close is safe to call more than once and concurrently with Publish.
func (s *Subscription) Close() {
	b := s.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	for i, x := range b.subs {
		if x == s {
			// Copy rather than shift in place: cheap, and nothing else holds
			// the old slice since it is only read under mu.
			b.subs = append(b.subs[:i:i], b.subs[i+1:]...)
			break
		}
	}
	close(s.c)
}
