package main

import (
	"fmt"
	"log/slog"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// adoptSockets takes the sockets the image before bound, in cfg's order
// (the same configuration, so the same sockets). On failure it closes
// nothing it was handed: the way back needs every fd as it was.
func adoptSockets(cfg *config.Config, in *inherited) ([]*sockets.Socket, error) {
	byName := map[string]sockets.State{}
	for _, st := range in.doc.Arbiter.Sockets {
		byName[st.Spec.Name] = st
	}
	var socks []*sockets.Socket
	for _, spec := range cfg.Sockets {
		st, ok := byName[spec.Name]
		if !ok {
			return nil, fmt.Errorf("upgrade: socket %q was not handed over", spec.Name)
		}
		s, err := sockets.Adopt(st)
		if err != nil {
			return nil, fmt.Errorf("upgrade: %w", err)
		}
		socks = append(socks, s)
		in.adopted = append(in.adopted, s)
	}
	return socks, nil
}

// inheritListeners gives the listeners of the image before to the
// endpoints about to listen (handover.Listen takes them by key).
func (in *inherited) inheritListeners() {
	if in != nil && !in.rebind {
		handover.Inherit(in.doc.Listeners)
		in.listened = len(in.doc.Listeners) > 0
	}
}

// closeUnclaimed closes the listeners the image before handed over that
// no endpoint took (none, with the same configuration).
func closeUnclaimed(log *slog.Logger) {
	for key, fd := range handover.Unclaimed() {
		unix.Close(fd)
		log.Warn("upgrade: a listener of the old image was not taken; closed", "listener", key)
	}
}
