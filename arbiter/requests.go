package arbiter

import (
	"context"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// The requests a watcher's loop takes. Each is a value of its own type,
// carrying its reply channel (buffered, so that the loop never waits on a
// caller that went away); handle is the one place that says what each
// does, by the state the watcher is in. The Watcher's methods build them.
// A stop overtakes whatever waits (a start, reloads queued or running),
// which it answers; the arbiter's shutdown (finalReq, then stopReq) comes
// before all.
type request interface{ request() }

type (
	startReq  struct{ reply chan<- error }
	stopReq   struct{ reply chan<- error }
	statusReq struct{ reply chan<- Status }
	// optionsReq asks for the options in effect, numprocesses as resized.
	optionsReq struct{ reply chan<- config.Watcher }
	// incrReq resizes by delta; n gets the new size at once, reply the
	// end of the resize.
	incrReq struct {
		delta int
		n     chan<- int
		reply chan<- error
	}
	// resizeReq adopts cfg, which differs in numprocesses alone.
	resizeReq struct {
		cfg   *config.Watcher
		reply chan<- error
	}
	// setReq gives the watcher new options (see Arbiter.Set).
	setReq struct {
		cfg   *config.Watcher
		socks []*sockets.Socket
		keys  []string
		reply chan<- error
	}
	killReq struct {
		pid     int
		sig     syscall.Signal
		timeout time.Duration
		reply   chan<- error
	}
	signalReq struct {
		pid                 int
		sig                 syscall.Signal
		children, recursive bool
		reply               chan<- error
	}
	signalChildReq struct {
		pid, child int
		sig        syscall.Signal
		reply      chan<- error
	}
	// abandonReq forgets every worker, leaving it running (rm --nostop).
	abandonReq struct{ reply chan<- error }
	// finalReq marks the arbiter's shutdown: no start is taken after it.
	finalReq struct{ reply chan<- error }
)

func (startReq) request()       {}
func (stopReq) request()        {}
func (statusReq) request()      {}
func (optionsReq) request()     {}
func (incrReq) request()        {}
func (resizeReq) request()      {}
func (reloadReq) request()      {}
func (setReq) request()         {}
func (killReq) request()        {}
func (signalReq) request()      {}
func (signalChildReq) request() {}
func (abandonReq) request()     {}
func (finalReq) request()       {}

// handle does what r asks, on the loop.
func (w *Watcher) handle(r request) {
	switch r := r.(type) {
	case startReq:
		w.beginStart(r.reply, true)
	case stopReq:
		w.retryAt = time.Time{}
		w.restartAfter = false
		w.stopWaiters = append(w.stopWaiters, r.reply)
		w.cancelQueued(fmt.Errorf("watcher %s: %w: stop requested", w.name, ErrStopped))
		w.beginStop("")
	case statusReq:
		st := Status{State: w.state, Target: w.target, Sockets: slices.Clone(w.socks), Autoscale: w.scaleStatus()}
		st.Detail, st.RetryAt = w.detail(time.Now())
		for _, p := range w.procs {
			st.Procs = append(st.Procs, p.info())
		}
		w.restartStatus(&st)
		r.reply <- st
	case optionsReq:
		c := *w.cfg
		c.NumProcesses = w.target
		r.reply <- c
	case incrReq:
		if !w.cfg.Singleton {
			w.target = w.cfg.Autoscale.Clamp(max(w.target+r.delta, 0))
		}
		if w.scale != nil {
			w.scale.pause() // the operator's size is where it goes on from
		}
		w.endCrashPause()
		r.n <- w.target
		w.log.Info("resizing", "numprocesses", w.target)
		w.scaleWaiters = append(w.scaleWaiters, r.reply)
		w.reconcile()
		w.progress()
	case resizeReq:
		w.target = w.sizeFor(r.cfg)
		w.cfg = r.cfg
		w.adoptAutoscale()
		w.scaleWaiters = append(w.scaleWaiters, r.reply)
		w.reconcile()
		w.progress()
	case reloadReq:
		w.beginReload(r.reply, r.cfg, r.socks, r.sequential, r.hup)
	case setReq:
		w.set(r)
	case killReq:
		w.kill(r)
	case signalReq:
		w.signalCmd(r)
	case signalChildReq:
		w.signalChild(r)
	case abandonReq:
		w.abandon()
		r.reply <- nil
	case finalReq:
		w.final = true
		r.reply <- nil
	case freezeReq:
		w.freeze(r)
	default:
		panic(fmt.Sprintf("BUG: watcher request %T", r))
	}
}

// send hands r to the loop. It fails only when the loop has ended or ctx
// is done.
func (w *Watcher) send(ctx context.Context, r request) error {
	if err := ctx.Err(); err != nil {
		// Done already: never sent, though the loop may be free too (a
		// restart cancelled by the shutdown must not start anything).
		return err
	}
	select {
	case w.reqc <- r:
		return nil
	case <-w.done:
		return fmt.Errorf("watcher %s: %w", w.name, ErrStopped)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// call sends r, whose reply comes on reply, and waits for the reply.
func call[T any](ctx context.Context, w *Watcher, r request, reply <-chan T) (T, error) {
	var zero T
	if err := w.send(ctx, r); err != nil {
		return zero, err
	}
	select {
	case v := <-reply:
		return v, nil
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// callErr is call for the requests whose reply is an error.
func callErr(ctx context.Context, w *Watcher, r request, reply <-chan error) error {
	err, cerr := call(ctx, w, r, reply)
	if cerr != nil {
		return cerr
	}
	return err
}
