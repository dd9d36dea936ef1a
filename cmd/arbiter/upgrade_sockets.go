package main

import (
	"errors"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// adoptSockets takes the sockets the image before bound, in cfg's order.
func adoptSockets(cfg *config.Config, in *inherited) ([]*sockets.Socket, error) {
	if len(cfg.Sockets) > 0 {
		return nil, errors.New("upgrade: this build cannot adopt [socket] sections yet")
	}
	return nil, nil
}
