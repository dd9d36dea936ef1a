package pubsub

import "testing"

// The String form of Circus's kinds is its topic suffix; a topic a client
// filters on must never change.
func TestKindString(t *testing.T) {
	want := map[Kind]string{
		Spawn: "spawn", Reap: "reap", Kill: "kill", Start: "start", Stop: "stop",
		Reload: "reload", Updated: "updated", Add: "add", Remove: "remove",
		Flapping: "flapping", Orphan: "orphan", ReloadConfig: "reloadconfig", Health: "health", HookSuccess: "hook_success", HookFailure: "hook_failure", Limit: "limit", Ready: "ready", OOM: "oom", Scale: "scale", Kind(0): "unknown", Kind(99): "unknown",
	}
	for k, s := range want {
		if got := k.String(); got != s {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), got, s)
		}
	}
}
