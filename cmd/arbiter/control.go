package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
)

// listenControl binds [circus] endpoint. A failure names the config line.
func listenControl(cfg *config.Config, h control.Handler, log *slog.Logger) (*control.Server, error) {
	remote := cfg.Circus.Access.InsecureRemote
	srv, err := control.Listen(cfg.Circus.Endpoint, h, control.ServerOptions{
		Logger:      log.With("endpoint", "control"),
		Identify:    access.Identify,
		AllowRemote: remote,
	})
	if err != nil {
		return nil, cfg.KeyError("circus", "endpoint", err)
	}
	if remote {
		log.Warn("insecure_remote_control is set: any peer that can reach the control endpoint from another host may run every command, unauthenticated; local peers are still identified", "endpoint", srv.Addr())
	}
	if owner := cfg.Circus.EndpointOwner; owner != "" {
		if err := chownEndpoint(cfg.Circus.Endpoint, owner); err != nil {
			srv.Close()
			return nil, cfg.KeyError("circus", "endpoint_owner", err)
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
	_ = srv.Shutdown(ctx)
	if t != nil {
		t.Close()
	}
}
