package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
)

// lateTable lets the control endpoint be bound before the arbiter exists
// (so that an endpoint in use fails before any socket is bound) and
// answer once the command table is there.
type lateTable struct {
	t atomic.Pointer[commands.Table]
}

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
	if owner := cfg.Circus.EndpointOwner; owner != "" {
		if err := chownEndpoint(cfg.Circus.Endpoint, owner); err != nil {
			srv.Close()
			return nil, configErr(cfg, "endpoint_owner", err)
		}
	}
	log.Info("listening for commands", "endpoint", srv.Addr())
	return srv, nil
}

// chownEndpoint gives an ipc endpoint's socket file to owner, as Circus's
// endpoint_owner does, so that a user other than the arbiter's may drive
// it while the file stays mode 0600. A tcp endpoint has no file: refused,
// since the option would then protect nothing.
func chownEndpoint(endpoint, owner string) error {
	path, ok := strings.CutPrefix(endpoint, "ipc://")
	if !ok {
		return fmt.Errorf("endpoint_owner %q needs an ipc:// endpoint, not %s", owner, endpoint)
	}
	u, err := user.Lookup(owner)
	if err != nil {
		if u, err = user.LookupId(owner); err != nil {
			return fmt.Errorf("unknown user %q", owner)
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
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
