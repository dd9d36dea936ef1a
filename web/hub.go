package web

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

// What the hub keeps for pages that connect or come back.
const (
	keepEvents  = 200     // in a snapshot
	keepSamples = 150     // in a snapshot: 5 minutes at one every 2 s
	ringFrames  = 4096    // broadcast messages kept for resuming pages
	ringBytes   = 8 << 20 // ... and at most this many bytes of them
)

// frame is one broadcast message.
type frame struct {
	seq  uint64
	data []byte
}

// flush asks the hub to close done once it has broadcast the Bus's
// events up to seq upto.
type flush struct {
	upto uint64
	done chan struct{}
}

type join struct {
	c      *client
	stream string
	since  uint64
}

// poll is what the poller read from the arbiter.
type poll struct {
	// watchers are the watchers read, in start order when full. A nil data
	// means the watcher did not answer in time: keep what was known.
	watchers []polled
	// full: watchers lists every watcher, so any other is gone.
	full bool
	// gone are watchers found removed.
	gone   []string
	sample json.RawMessage // nil: no sample this time
}

type polled struct {
	name string
	data json.RawMessage
}

// hub is the console's one owner of state (DESIGN.md, concurrency point 1):
// its run goroutine reads the Bus and the poller's results, numbers the
// messages, keeps what a new page needs, and fans messages out to the
// pages. It never waits for a page nor for a watcher: pages get
// non-blocking offers, and the reads that can block (a watcher's loop,
// /proc) happen on the poller goroutine, which hands back results.
type hub struct {
	a        *arbiter.Arbiter
	sub      *pubsub.Subscription
	sampler  *stats.Sampler
	sockets  stats.Source // for Sockets only
	interval time.Duration
	queue    int
	log      *slog.Logger
	arbiter  json.RawMessage // the snapshot's "arbiter" member
	stream   string          // identifies this run's numbering, for resuming

	joinc   chan join
	flushc  chan flush
	leavec  chan *client
	polledc chan poll
	dirtyc  chan string // to the poller; "" means every watcher
	clients atomic.Int32
	done    chan struct{} // closed when run returns

	// Owned by run.
	seq      uint64
	ring     []frame
	ringSize int
	events   []json.RawMessage
	samples  []json.RawMessage
	watchers map[string]json.RawMessage
	order    []string
	pages    map[*client]struct{}
	busSeq   uint64
}

func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	var wg sync.WaitGroup
	wg.Go(func() { h.poll(ctx) })
	defer wg.Wait()
	h.markDirty("")
	var flushes []flush
	events := h.sub.C()
	for {
		select {
		case <-ctx.Done():
			for c := range h.pages {
				c.finish()
			}
			return
		case f := <-h.flushc:
			if h.busSeq >= f.upto {
				close(f.done)
			} else {
				flushes = append(flushes, f)
			}
		case ev, ok := <-events:
			if !ok {
				// Close ends the subscription after it cancels ctx, and
				// both may be ready at once: the pages are let go on
				// ctx.Done, never left waiting here.
				events = nil
				continue
			}
			h.event(ev)
			flushes = slices.DeleteFunc(flushes, func(f flush) bool {
				if h.busSeq >= f.upto {
					close(f.done)
					return true
				}
				return false
			})
		case p := <-h.polledc:
			h.apply(p)
		case j := <-h.joinc:
			h.join(j)
		case c := <-h.leavec:
			if _, ok := h.pages[c]; ok {
				delete(h.pages, c)
				h.clients.Add(-1)
			}
		}
	}
}

// event broadcasts ev and has the watchers it changed read again.
func (h *hub) event(ev pubsub.Event) {
	gap := h.busSeq != 0 && ev.Seq != h.busSeq+1
	h.busSeq = ev.Seq
	e := encodeEvent(ev)
	h.events = keepLast(h.events, e, keepEvents)
	h.broadcast(envelope("event", h.next(), "event", e))
	switch {
	case ev.Kind == pubsub.Orphan:
		// An orphan was no worker: nothing shown changed.
		if gap {
			h.markDirty("")
		}
	case gap, ev.Watcher == "":
		// Events were lost, or the arbiter's own (reloadconfig) may have
		// changed any watcher.
		h.markDirty("")
	case ev.Kind == pubsub.Add || ev.Kind == pubsub.Remove:
		h.markDirty("")
	default:
		h.markDirty(ev.Watcher)
	}
}

func (h *hub) markDirty(name string) {
	select {
	case h.dirtyc <- name:
	default:
		// The poller is behind; it will read everything on its next tick.
	}
}

// apply broadcasts the watchers whose state changed and the sample.
func (h *hub) apply(p poll) {
	seen := make(map[string]bool, len(p.watchers))
	for _, w := range p.watchers {
		seen[w.name] = true
		if w.data == nil {
			continue
		}
		old, known := h.watchers[w.name]
		if known && string(old) == string(w.data) {
			continue
		}
		h.watchers[w.name] = w.data
		if !known && !p.full {
			h.order = append(h.order, w.name)
		}
		h.broadcast(envelope("watcher", h.next(), "watcher", w.data))
	}
	gone := p.gone
	if p.full {
		for _, name := range h.order {
			if !seen[name] {
				gone = append(gone, name)
			}
		}
		h.order = h.order[:0]
		for _, w := range p.watchers {
			if _, ok := h.watchers[w.name]; ok {
				h.order = append(h.order, w.name)
			}
		}
	}
	for _, name := range gone {
		if _, ok := h.watchers[name]; !ok {
			continue
		}
		delete(h.watchers, name)
		h.order = slices.DeleteFunc(h.order, func(n string) bool { return n == name })
		h.broadcast(envelope("removed", h.next(), "name", name))
	}
	if p.sample != nil {
		h.samples = keepLast(h.samples, p.sample, keepSamples)
		h.broadcast(spliceSample(h.next(), p.sample))
	}
}

func (h *hub) next() uint64 {
	h.seq++
	return h.seq
}

// broadcast keeps b for resuming pages and offers it to every page.
func (h *hub) broadcast(b []byte) {
	h.ring = append(h.ring, frame{h.seq, b})
	h.ringSize += len(b)
	drop := 0
	for len(h.ring)-drop > ringFrames || h.ringSize > ringBytes {
		h.ringSize -= len(h.ring[drop].data)
		drop++
	}
	if drop > 0 {
		h.ring = slices.Delete(h.ring, 0, drop)
	}
	for c := range h.pages {
		if !c.offer(b) {
			h.drop(c)
		}
	}
}

func (h *hub) drop(c *client) {
	delete(h.pages, c)
	h.clients.Add(-1)
}

// join sends a new page what it lacks: the messages after since when the
// ring still has them all and they fit its queue, else a snapshot.
func (h *hub) join(j join) {
	h.pages[j.c] = struct{}{}
	if h.clients.Add(1) == 1 {
		// The first page: give it fresh figures rather than wait a tick.
		h.markDirty("")
	}
	if j.stream == h.stream && j.since <= h.seq && h.seq-j.since <= uint64(h.queue/2) &&
		(j.since == h.seq || len(h.ring) > 0 && h.ring[0].seq <= j.since+1) {
		// resumed tells the page how far it must read to be current.
		if !j.c.offer(envelope("resumed", 0, "since", j.since, "upto", h.seq)) {
			h.drop(j.c)
			return
		}
		i, _ := slices.BinarySearchFunc(h.ring, j.since+1, func(f frame, s uint64) int {
			return cmp.Compare(f.seq, s)
		})
		for _, f := range h.ring[i:] {
			if !j.c.offer(f.data) {
				h.drop(j.c)
				return
			}
		}
		return
	}
	if !j.c.offer(h.snapshot()) {
		h.drop(j.c)
	}
}

func (h *hub) snapshot() []byte {
	ws := make([]json.RawMessage, 0, len(h.order))
	for _, name := range h.order {
		ws = append(ws, h.watchers[name])
	}
	return envelope("snapshot", h.seq,
		"stream", h.stream,
		"arbiter", h.arbiter,
		"watchers", rawList(ws),
		"events", rawList(h.events),
		"stats", rawList(h.samples))
}

// poll reads the arbiter for the hub: the watchers an event named, and
// every watcher plus a stats sample each interval while a page is open.
func (h *hub) poll(ctx context.Context) {
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		var names map[string]bool
		all, sample := false, false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if h.clients.Load() == 0 {
				continue
			}
			all, sample = true, true
		case name := <-h.dirtyc:
			names = map[string]bool{}
			all = name == ""
			names[name] = true
		}
		// Take every name waiting, so that a burst of events (a pool
		// restarting) costs one read per watcher.
	drain:
		for {
			select {
			case name := <-h.dirtyc:
				all = all || name == ""
				if names != nil {
					names[name] = true
				}
			default:
				break drain
			}
		}
		var p poll
		if all {
			p = h.readAll(ctx, sample)
		} else {
			p = h.readSome(ctx, names)
		}
		select {
		case h.polledc <- p:
		case <-ctx.Done():
			return
		}
	}
}

// readTimeout bounds a read of one watcher, whose loop may be busy (a
// spawn burst); a watcher that does not answer keeps its last state.
const readTimeout = 2 * time.Second

func (h *hub) readSome(ctx context.Context, names map[string]bool) poll {
	var p poll
	for name := range names {
		w := h.a.Watcher(name)
		if w == nil {
			p.gone = append(p.gone, name)
			continue
		}
		p.watchers = append(p.watchers, polled{w.Name(), h.read(ctx, w)})
	}
	return p
}

func (h *hub) readAll(ctx context.Context, sample bool) poll {
	src := &recorder{hub: h}
	var p poll
	if sample {
		cctx, cancel := context.WithTimeout(ctx, h.interval)
		snap, err := h.sampler.Collect(cctx, src, false)
		cancel()
		if err == nil {
			p.sample = encodeSample(snap, src.queues)
		}
	} else {
		_, _ = src.Watchers(ctx)
	}
	p.watchers = src.read
	// A pass cut short (its deadline) does not list every watcher, and
	// those it missed are not gone.
	p.full = src.complete
	return p
}

func (h *hub) read(ctx context.Context, w *arbiter.Watcher) json.RawMessage {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	st, err := w.Status(ctx)
	if err != nil {
		return nil
	}
	return encodeWatcher(w.Name(), commandLine(w), st)
}

// recorder is the stats Source of a full read: the sample and the
// watchers' states come from the same pass over the watchers.
type recorder struct {
	hub      *hub
	read     []polled
	queues   map[string]int // the autoscaled watchers' queues
	complete bool           // Watchers went through every watcher
}

func (r *recorder) Watchers(ctx context.Context) ([]stats.Watcher, error) {
	ws := r.hub.a.Watchers()
	out := make([]stats.Watcher, 0, len(ws))
	r.read = r.read[:0]
	r.complete = false
	for _, w := range ws {
		rctx, cancel := context.WithTimeout(ctx, readTimeout)
		st, err := w.Status(rctx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			// Removed meanwhile, or busy: the hub keeps what it knew.
			r.read = append(r.read, polled{name: w.Name()})
			continue
		}
		r.read = append(r.read, polled{w.Name(), encodeWatcher(w.Name(), commandLine(w), st)})
		if a := st.Autoscale; a != nil {
			if r.queues == nil {
				r.queues = map[string]int{}
			}
			r.queues[w.Name()] = a.Queue
		}
		sw := stats.Watcher{Name: w.Name(), Procs: make([]stats.Process, len(st.Procs))}
		for i, p := range st.Procs {
			sw.Procs[i] = stats.Process{Pid: p.Pid, Wid: p.Wid, Started: p.Started}
		}
		out = append(out, sw)
	}
	r.complete = true
	return out, nil
}

func (r *recorder) Sockets() []stats.Socket { return r.hub.sockets.Sockets() }

// commandLine is the watcher's cmd and args as configured, for display.
func commandLine(w *arbiter.Watcher) string {
	c := w.Config()
	if c.Args == "" {
		return c.Cmd
	}
	return c.Cmd + " " + c.Args
}

func keepLast(s []json.RawMessage, v json.RawMessage, n int) []json.RawMessage {
	if len(s) >= n {
		s = slices.Delete(s, 0, len(s)-n+1)
	}
	return append(s, v)
}

// newStreamID names one run of the hub, so that a page that resumes after
// the arbiter restarted gets a snapshot rather than another run's messages.
func newStreamID() string {
	return strconv.FormatInt(time.Now().UnixNano(), 36)
}
