package commands

import (
	"context"

	"github.com/ringmaster-dev/ringmaster/control"
)

// Upgrader is the arbiter's upgrade in place, as the upgrade command
// drives it (cmd/arbiter provides it).
type Upgrader interface {
	// Start checks the new binary (binary, or "" for the arbiter's own
	// path) and, if it will take the arbiter's state, begins the upgrade
	// once the reply is out; the fields say which attempt, from and to
	// which versions. A binary that fails its check is the error. With
	// reload, the new image then reloads the configuration file (as
	// reloadconfig), which an upgrade alone never does.
	Start(binary string, reload bool) (control.Object, error)
	// Last says what the last attempt came to, in this image (which may
	// be the new one, or the old one back after a failure).
	Last() control.Object
}

// cmdUpgrade is Ringmaster's upgrade: {"binary": PATH, "reloadconfig":
// true} (both optional) starts an upgrade in place. A client waits for it by asking upgradestatus, on a
// new connection, until the attempt it was given is reported: the exec
// drops every connection.
func cmdUpgrade(t *Table, req control.Request) (job, *control.Error) {
	if t.opts.Upgrader == nil {
		return job{}, errNoUpgrade
	}
	binary, e := req.StringOr("binary", "")
	if e != nil {
		return job{}, e
	}
	reload, e := req.BoolOr("reloadconfig", false)
	if e != nil {
		return job{}, e
	}
	return now(func(context.Context) control.Reply {
		fields, err := t.opts.Upgrader.Start(binary, reload)
		if err != nil {
			return control.Fail(control.Errorf(control.CommandError, "%v", err))
		}
		return control.OK(fields...)
	})
}

// errNoUpgrade answers upgrade and upgradestatus on a Table without an
// Upgrader.
var errNoUpgrade = control.Errorf(control.CommandError, "this arbiter cannot upgrade in place")

// cmdUpgradeStatus is Ringmaster's upgradestatus: the arbiter's pid and
// version, and what its last upgrade came to. It changes nothing (read
// rights suffice, and it is not audited), so that a client may poll it.
func cmdUpgradeStatus(t *Table, req control.Request) (job, *control.Error) {
	if t.opts.Upgrader == nil {
		return job{}, errNoUpgrade
	}
	return now(func(context.Context) control.Reply { return control.OK(t.opts.Upgrader.Last()...) })
}
