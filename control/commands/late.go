package commands

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
)

// Late is the handler of a control endpoint bound before its [Table]
// exists, so that an endpoint in use fails start-up before any socket is
// bound: until [Late.Set], every request is answered "the arbiter is
// starting; try again". The zero value is ready to use; it is safe for
// concurrent use.
type Late struct {
	// Config, when set, is the configuration whose access keys Check
	// applies until the Table is set, so that a subscriber may connect
	// while the arbiter starts.
	Config *config.Config

	t atomic.Pointer[Table]
}

// Set makes t answer every request from now on.
func (l *Late) Set(t *Table) { l.t.Store(t) }

// Handle answers req through the Table, once set.
func (l *Late) Handle(ctx context.Context, req control.Request) control.Reply {
	return l.Accept(req)(ctx)
}

// Accept is [Table.Accept] once the Table is set.
func (l *Late) Accept(req control.Request) func(context.Context) control.Reply {
	if t := l.t.Load(); t != nil {
		return t.Accept(req)
	}
	return func(context.Context) control.Reply {
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
