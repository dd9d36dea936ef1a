package main

import (
	"log/slog"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/plugins"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// startPlugins runs the configuration's [plugin:NAME] sections (Circus's
// plugins, built in) through the command table, as Circus's plugin
// processes use the control socket, and follows reloadconfig. Started
// before the arbiter runs, so that they see its first spawns; closed after
// it stopped and before the table.
func startPlugins(a *arbiter.Arbiter, bus *pubsub.Bus, h control.OrderedHandler, log *slog.Logger) *plugins.Manager {
	return plugins.Start(plugins.Options{Commands: h, Bus: bus, Config: a.Config, Logger: log})
}
