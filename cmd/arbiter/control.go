package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
)

// lateTable lets the control endpoint be bound before the arbiter exists
// (so that an endpoint in use fails before any socket is bound) and
// answer once the command table is there.
type lateTable struct{ t atomic.Pointer[commands.Table] }

func (l *lateTable) Handle(ctx context.Context, req control.Request) control.Reply {
	return l.Accept(req)(ctx)
}

func (l *lateTable) Accept(req control.Request) func(context.Context) control.Reply {
	if t := l.t.Load(); t != nil {
		return t.Accept(req)
	}
	return func(context.Context) control.Reply {
		return control.Failf(control.CommandError, "the arbiter is starting; try again")
	}
}

// listenControl binds [circus] endpoint. A failure names the config line.
func listenControl(cfg *config.Config, h control.Handler, log *slog.Logger) (*control.Server, error) {
	srv, err := control.Listen(cfg.Circus.Endpoint, h, control.ServerOptions{Logger: log.With("endpoint", "control")})
	if err != nil {
		return nil, configErr(cfg, "endpoint", err)
	}
	log.Info("listening for commands", "endpoint", srv.Addr())
	return srv, nil
}

// closeControl sends the replies still owed (quit's, typically), for at
// most a second, then closes the endpoint and the table.
func closeControl(srv *control.Server, t *commands.Table) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = srv.Drain(ctx)
	srv.Close()
	if t != nil {
		t.Close()
	}
}
