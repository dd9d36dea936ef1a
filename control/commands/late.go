package commands

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
)

// Late is the handler of a control endpoint bound before its [Table]
// exists, so that an endpoint in use fails start-up before any socket is
// bound: until [Late.Set], a request waits for the Table for up to Wait,
// then is answered "the arbiter is starting; try again". The zero value
// is ready to use; it is safe for concurrent use.
type Late struct {
	// Config, when set, is the configuration whose access keys Check
	// applies until the Table is set, so that a subscriber may connect
	// while the arbiter starts.
	Config *config.Config
	// Wait bounds how long a request that comes before the Table waits
	// for it: a client that connects while an arbiter upgraded in place
	// restores its state (its listeners were never closed) is answered
	// a few milliseconds later rather than refused. 0: refused at once.
	Wait time.Duration

	t     atomic.Pointer[Table]
	once  sync.Once
	ready chan struct{} // closed by the first Set
	set   sync.Once
}

// Set makes t answer every request from now on, those waiting included.
func (l *Late) Set(t *Table) {
	l.t.Store(t)
	l.set.Do(func() { close(l.readyc()) })
}

func (l *Late) readyc() chan struct{} {
	l.once.Do(func() { l.ready = make(chan struct{}) })
	return l.ready
}

// Handle answers req through the Table, once set.
func (l *Late) Handle(ctx context.Context, req control.Request) control.Reply {
	return l.Accept(req)(ctx)
}

// Accept is [Table.Accept] once the Table is set.
func (l *Late) Accept(req control.Request) func(context.Context) control.Reply {
	if t := l.t.Load(); t != nil {
		return t.Accept(req)
	}
	return func(ctx context.Context) control.Reply {
		if l.Wait > 0 {
			timer := time.NewTimer(l.Wait)
			defer timer.Stop()
			select {
			case <-l.readyc():
				return l.t.Load().Accept(req)(ctx)
			case <-timer.C:
			case <-ctx.Done():
			}
		}
		return control.Failf(control.CommandError, "the arbiter is starting; try again")
	}
}

// Check is [Table.Check] once the Table is set; until then, the policy
// of Config, or without it a refusal.
func (l *Late) Check(p access.Peer, command string) error {
	if t := l.t.Load(); t != nil {
		return t.Check(p, command)
	}
	if l.Config != nil {
		return policyFor(l.Config).Check(p, command)
	}
	return errStarting
}

var errStarting = errors.New("the arbiter is starting; try again")
