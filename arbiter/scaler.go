package arbiter

import (
	"fmt"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
)

// scaler decides the size of an autoscaled pool from samples of what
// waits in its sockets' accept queues, about ten a second (queues.go). It
// knows nothing of processes and has no clock of its own: the watcher's
// loop gives it each sample with the time it was taken and the pool as it
// stands, and resizes the pool when it answers another size. It is a pure
// decision, tested on its own with a fake clock.
//
// Up: connections that keep waiting beyond what the workers on their way
// will take (those wanted and not yet ready: a worker that is starting is
// capacity coming, not a reason to start more) for autoscale.up_after
// call for workers in proportion, one per autoscale.queue_per_worker of
// the least excess seen over that time, all at once; a burst shorter than
// up_after adds none. An empty pool starts workers at the first waiting
// connection. Down: once the queue has stayed empty for autoscale.idle
// with every wanted worker ready, one worker goes, then one more each
// autoscale.down_interval while it stays empty, never below autoscale.min.
// A pool that had to grow again within the wait it shrank after (idle at
// first) waits twice as long before it shrinks the next time, up to
// holdMax times idle, and a shrink that stands for that long halves the
// wait again: a load that comes and goes does not make the count go up
// and down with it, and a pool that shrank too far finds its level.
type scaler struct {
	cfg config.Autoscale

	busySince  time.Time // the run of samples with connections beyond the capacity coming began; zero: none
	busyLeast  int       // the least such excess over the run
	emptySince time.Time // the run of empty samples began; zero: the last sample was not empty
	lastDown   time.Time // the last shrink; zero: none yet
	judged     bool      // whether lastDown has counted toward hold yet
	hold       int       // idle is multiplied by this before a shrink; 0 means 1
}

// holdMax bounds how much longer than autoscale.idle a pool that keeps
// having to grow again waits before it shrinks.
const holdMax = 4

// poolSize is what the decision needs of the pool.
type poolSize struct {
	target int // workers wanted: numprocesses as resized
	ready  int // workers up and ready, not on their way out
}

// observe takes q, the connections waiting at now, and returns the size
// the pool should have: p.target when it stays, else the new size and why.
func (s *scaler) observe(now time.Time, q int, p poolSize) (int, string) {
	s.judge(now)
	qpw := max(s.cfg.QueuePerWorker, 1)
	if q > 0 {
		s.emptySince = time.Time{}
	}
	if p.target == 0 && q > 0 {
		// Nothing will ever take these: start at once.
		s.busySince = time.Time{}
		s.grew(now)
		return s.cfg.Clamp(ceilDiv(q, qpw)), fmt.Sprintf("queue %d, no worker", q)
	}
	coming := max(p.target-p.ready, 0)
	if excess := q - coming*qpw; excess > 0 {
		if s.busySince.IsZero() {
			s.busySince, s.busyLeast = now, excess
		}
		s.busyLeast = min(s.busyLeast, excess)
		waited := now.Sub(s.busySince)
		if waited < s.cfg.UpAfter || p.target >= s.cfg.Max {
			return p.target, ""
		}
		n := s.cfg.Clamp(p.target + ceilDiv(s.busyLeast, qpw))
		s.busySince = time.Time{}
		s.grew(now)
		return n, fmt.Sprintf("queue %d for %s", q, waited.Round(time.Millisecond))
	}
	s.busySince = time.Time{}
	if q > 0 {
		return p.target, "" // the workers on their way will take them
	}
	if s.emptySince.IsZero() {
		s.emptySince = now
	}
	if p.target <= s.cfg.Min || p.ready < p.target {
		return p.target, "" // nothing to spare, or workers still coming
	}
	due := s.emptySince.Add(s.wait())
	if s.lastDown.After(s.emptySince) {
		due = s.lastDown.Add(s.cfg.DownInterval) // the same quiet spell: the next one
	}
	if now.Before(due) {
		return p.target, ""
	}
	s.lastDown, s.judged = now, false
	return s.cfg.Clamp(p.target - 1), fmt.Sprintf("queue empty for %s", now.Sub(s.emptySince).Round(100*time.Millisecond))
}

// wait is how long the queue must stay empty before the pool shrinks.
func (s *scaler) wait() time.Duration { return s.cfg.Idle * time.Duration(max(s.hold, 1)) }

// grew records a decision to grow: one within the wait of the last
// shrink doubles the hold (that shrink was a mistake).
func (s *scaler) grew(now time.Time) {
	if !s.lastDown.IsZero() && !s.judged && now.Sub(s.lastDown) < s.wait() {
		s.hold = min(max(s.hold, 1)*2, holdMax)
	}
	s.judged = true
}

// judge halves the hold once the last shrink has stood for the wait.
func (s *scaler) judge(now time.Time) {
	if !s.lastDown.IsZero() && !s.judged && now.Sub(s.lastDown) >= s.wait() {
		s.judged = true
		s.hold = max(s.hold/2, 1)
	}
}

// pause forgets the runs of samples under way: the pool is not the
// scaler's to resize now (a reload, a start or stop, an operator's
// resize), and what was seen before says nothing of it afterwards.
func (s *scaler) pause() {
	s.busySince, s.emptySince = time.Time{}, time.Time{}
}

// ceilDiv is ⌈a/b⌉ for a ≥ 0, b > 0.
func ceilDiv(a, b int) int { return (a + b - 1) / b }
