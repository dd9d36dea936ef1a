package arbiter

import (
	"errors"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

// The sampler: one goroutine of the arbiter reads the accept queues of
// every autoscaled watcher's sockets, each socket once a round however
// many watchers share it, about ten times a second, and hands each
// watcher's loop the sum over its sockets (offerQueue, which never
// waits). The arbiter holds every listening socket, so it sees what no
// worker can. A loop is woken only when there is something to decide: a
// queue, the first empty one after it, and while its pool has workers to
// spare, a quiet sample each down_interval (at most a second apart) so
// that it can shrink; a pool at its min with nobody waiting costs its
// loop nothing.
//
// A pool at zero must not leave its first connection waiting for the
// next round: between rounds the sampler sleeps in epoll_wait on the
// sockets of the watchers whose pools are empty (level-triggered, one
// shot, armed again at the next round once fired), and a connection
// arriving there samples those watchers at once. A watcher whose pool has
// just emptied has the sampler arm its sockets at once (kick), not at the
// next round. Without epoll it only samples.

const (
	// sampleEvery is the time between rounds.
	sampleEvery = 100 * time.Millisecond
	// sampleIdle is the time between rounds while no watcher's options
	// ask for autoscaling: the sampler then only looks for one that
	// comes to (set, reloadconfig, add).
	sampleIdle = time.Second
)

// queueSampler is the sampling goroutine's state: it owns all of it.
type queueSampler struct {
	a    *Arbiter
	stop chan struct{}
	done chan struct{}

	r      sockets.QueueReader
	qs     []sockets.Queue
	socks  []*sockets.Socket
	index  map[*sockets.Socket]int
	chosen []*Watcher
	sent   map[*Watcher]*sent // what each watcher was last sent
	gen    uint64             // rounds, to forget the watchers gone

	// The pools at zero: an epoll set of their sockets (ep, or -1
	// without one), with an eventfd (kick) that ends a wait, to stop or to
	// arm; kick is set before the goroutine starts, and written and
	// closed under mu.
	ep, kick int
	mu       sync.Mutex
	closed   bool // kick is closed
	armed    map[*sockets.Socket]*armedSocket
	want     map[*sockets.Socket]bool // arm's, kept between rounds
	tokens   map[int32]*sockets.Socket
	next     int32
	events   []unix.EpollEvent
}

// sent is what a watcher's loop was last sent.
type sent struct {
	busy bool      // a queue, or an unreadable one
	at   time.Time // when
	gen  uint64    // the last round that saw the watcher
}

type armedSocket struct {
	token int32
	fired bool // its one shot went: armed again at the next round
}

// newQueues prepares the sampler; start it with start, once the watcher
// loops run, and stop it with stopQueues.
func (a *Arbiter) newQueues() *queueSampler {
	q := &queueSampler{a: a, stop: make(chan struct{}), done: make(chan struct{}), ep: -1, kick: -1,
		index: map[*sockets.Socket]int{}, armed: map[*sockets.Socket]*armedSocket{}, tokens: map[int32]*sockets.Socket{},
		sent: map[*Watcher]*sent{}, want: map[*sockets.Socket]bool{}}
	if err := q.openEpoll(); err != nil {
		a.log.Warn("autoscaling: no epoll; an empty pool waits for the next sample", "err", err)
	}
	return q
}

func (q *queueSampler) start() { go q.run() }

// kickQueues has the sampler arm the sockets of a pool that has just
// emptied now rather than at its next round. It never waits.
func (a *Arbiter) kickQueues() {
	if q := a.queues.Load(); q != nil {
		q.poke()
	}
}

func (q *queueSampler) poke() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.kick >= 0 && !q.closed {
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(q.kick, one[:]) // EAGAIN: a poke is pending anyway
	}
}

// stopQueues ends the sampler and waits for it.
func (q *queueSampler) stopQueues() {
	close(q.stop)
	q.poke()
	<-q.done
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.kick >= 0 && !q.closed {
		unix.Close(q.kick)
	}
	q.closed = true
}

func (q *queueSampler) openEpoll() error {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return err
	}
	kick, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(ep)
		return err
	}
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, kick, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: 0}); err != nil {
		unix.Close(ep)
		unix.Close(kick)
		return err
	}
	q.ep, q.kick, q.next = ep, kick, 1
	q.events = make([]unix.EpollEvent, 64)
	return nil
}

func (q *queueSampler) run() {
	defer close(q.done)
	defer q.close()
	next := time.Now()
	for {
		woken, poked, stopped := q.wait(time.Until(next))
		if stopped {
			return
		}
		now := time.Now()
		if now.Before(next) {
			if len(woken) > 0 {
				q.round(now, woken)
			}
			if poked {
				q.arm(true)
			}
			continue
		}
		// Samples carry the time they were due, not the moment the read
		// ended: rounds sampleEvery apart must look so to the scaler, or
		// a queue that stayed up_after = sampleEvery could look 1 ms
		// short of it and wait for one more round.
		every := sampleIdle
		if q.round(next, nil) {
			every = sampleEvery
		}
		q.arm(false)
		next = next.Add(every)
		if next.Before(now) {
			next = now.Add(every) // a round missed (the machine stalled): no catching up
		}
	}
}

// wait sleeps until d has passed, a pool at zero has a connection waiting
// (those sockets are returned), a pool has just emptied (poked), or the
// sampler is stopped.
func (q *queueSampler) wait(d time.Duration) (woken map[*sockets.Socket]bool, poked, stopped bool) {
	if q.ep < 0 {
		t := time.NewTimer(max(d, 0))
		defer t.Stop()
		select {
		case <-q.stop:
			return nil, false, true
		case <-t.C:
			return nil, false, false
		}
	}
	ms := int((max(d, 0) + time.Millisecond - 1) / time.Millisecond)
	n, err := unix.EpollWait(q.ep, q.events, ms)
	select {
	case <-q.stop:
		return nil, false, true
	default:
	}
	if err != nil {
		if !errors.Is(err, unix.EINTR) {
			q.a.log.Warn("autoscaling: epoll_wait failed; an empty pool waits for the next sample", "err", err)
			q.closeEpoll()
		}
		return nil, false, false
	}
	for _, ev := range q.events[:n] {
		if ev.Fd == 0 {
			var b [8]byte
			_, _ = unix.Read(q.kick, b[:])
			poked = true
			continue
		}
		if s := q.tokens[ev.Fd]; s != nil {
			if woken == nil {
				woken = map[*sockets.Socket]bool{}
			}
			woken[s] = true
			q.armed[s].fired = true
		}
	}
	return woken, poked, false
}

// round samples every autoscaled watcher that runs, or with only, those
// at zero on those sockets, as at now. It reports whether any watcher's
// options ask for autoscaling, running or not.
func (q *queueSampler) round(now time.Time, only map[*sockets.Socket]bool) (wanted bool) {
	q.chosen, q.socks = q.chosen[:0], q.socks[:0]
	clear(q.index)
	if only == nil {
		clear(q.want)
	}
	for _, w := range q.a.Watchers() {
		wanted = wanted || w.Config().Autoscale.Enabled()
		if !w.scaleOn.Load() || only != nil && !(w.scaleZero.Load() && usesAny(w, only)) {
			continue
		}
		if only == nil && w.scaleZero.Load() {
			for _, s := range w.socketsOf() {
				q.want[s] = true
			}
		}
		q.chosen = append(q.chosen, w)
		for _, s := range w.socketsOf() {
			if _, ok := q.index[s]; !ok {
				q.index[s] = len(q.socks)
				q.socks = append(q.socks, s)
			}
		}
	}
	if len(q.chosen) == 0 {
		return wanted // q.want is empty too
	}
	q.qs = q.r.Read(q.qs, q.socks)
	q.gen++
	for _, w := range q.chosen {
		s := queueSample{at: now}
		for _, sock := range w.socketsOf() {
			qu := q.qs[q.index[sock]]
			if qu.Err != nil && s.err == nil {
				s.err = qu.Err
			}
			s.depth += qu.Len
			s.backlog += qu.Max
		}
		last := q.sent[w]
		if last == nil {
			last = &sent{}
			q.sent[w] = last
		}
		last.gen = q.gen
		busy := s.depth > 0 || s.err != nil
		if busy || last.busy || w.scaleSpare.Load() && now.Sub(last.at) >= quietEvery(w) {
			w.offerQueue(s)
			last.busy, last.at = busy, now
		}
	}
	if only == nil {
		for w, last := range q.sent {
			if last.gen != q.gen {
				delete(q.sent, w) // removed, stopped, or no longer autoscaled
			}
		}
	}
	return wanted
}

// quietEvery is how often a pool with workers to spare and an empty
// queue is sampled: each down_interval, at most a second apart, so that
// it shrinks on time.
func quietEvery(w *Watcher) time.Duration {
	return max(min(w.Config().Autoscale.DownInterval, time.Second), sampleEvery)
}

func usesAny(w *Watcher, set map[*sockets.Socket]bool) bool {
	for _, s := range w.socketsOf() {
		if set[s] {
			return true
		}
	}
	return false
}

// arm brings the epoll set to the sockets of the pools at zero, as the
// last round found them (with fresh, a pool that has just emptied: they
// are looked for again): one shot each, armed again once it has fired.
func (q *queueSampler) arm(fresh bool) {
	if q.ep < 0 {
		return
	}
	want := q.want
	if fresh {
		clear(want)
		for _, w := range q.a.Watchers() {
			if w.scaleOn.Load() && w.scaleZero.Load() {
				for _, s := range w.socketsOf() {
					want[s] = true
				}
			}
		}
	}
	for s, as := range q.armed {
		if !want[s] {
			// A socket closed meanwhile leaves the set when its last
			// copy goes; its token then means nothing.
			_ = s.Control(func(fd int) { _ = unix.EpollCtl(q.ep, unix.EPOLL_CTL_DEL, fd, nil) })
			delete(q.armed, s)
			delete(q.tokens, as.token)
		}
	}
	for s := range want {
		as := q.armed[s]
		if as != nil && !as.fired {
			continue
		}
		op := unix.EPOLL_CTL_MOD
		if as == nil {
			as = &armedSocket{token: q.next}
			q.next++
			op = unix.EPOLL_CTL_ADD
		}
		var err error
		cerr := s.Control(func(fd int) {
			err = unix.EpollCtl(q.ep, op, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT, Fd: as.token})
		})
		if cerr != nil || err != nil {
			continue // closed, or not pollable: the rounds still sample it
		}
		as.fired = false
		q.armed[s], q.tokens[as.token] = as, s
	}
}

func (q *queueSampler) closeEpoll() {
	if q.ep >= 0 {
		unix.Close(q.ep)
		q.ep = -1
		clear(q.armed)
		clear(q.tokens)
	}
}

func (q *queueSampler) close() {
	q.closeEpoll()
	_ = q.r.Close()
}
