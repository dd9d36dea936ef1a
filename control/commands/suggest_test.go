package commands_test

import (
	"testing"

	"github.com/ringmaster-dev/ringmaster/control"
)

// Every "unknown" and "not found" the table answers names the nearest
// known name when one is near, and only then (issue 16).
func TestSuggestions(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	tests := []struct {
		name, cmd, props string
		errno            control.Errno
		reason           string
	}{
		{"command", "stattus", "", control.UnknownCommand, "unknown command: 'stattus'; did you mean 'status'?"},
		{"command far from any", "frobnicate", "", control.UnknownCommand, "unknown command: 'frobnicate'"},
		{"watcher", "status", `{"name": "sleepr"}`, control.MessageError, "program sleepr not found; did you mean sleeper?"},
		{"watcher of a lifecycle command", "stop", `{"name": "sleepers"}`, control.MessageError, "program sleepers not found; did you mean sleeper?"},
		{"watcher of a queued command", "incr", `{"name": "manul"}`, control.MessageError, "program manul not found; did you mean manual?"},
		{"watcher far from any", "status", `{"name": "nope"}`, control.MessageError, "program nope not found"},
		{"set key", "set", `{"name": "sleeper", "options": {"numprocess": 2}}`, control.MessageError, "unknown key 'numprocess'; did you mean 'numprocesses'?"},
		{"get option", "get", `{"name": "sleeper", "keys": ["graceful_timout"]}`, control.MessageError, "'graceful_timout' option not found; did you mean 'graceful_timeout'?"},
		{"global option", "globaloptions", `{"option": "endpont"}`, control.MessageError, "'endpont' not an existing option; did you mean 'endpoint'?"},
		{"match method", "stop", `{"name": "sleeper", "match": "globb"}`, control.MessageError, "unknown match method globb; did you mean glob?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			(&env{arb: e.arb, t: t}).fails(tt.cmd, tt.props, tt.errno, tt.reason)
		})
	}
}
