package commands_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// refused checks that rep is an error with errno whose reason holds want.
func refused(t *testing.T, what string, rep control.Reply, errno control.Errno, want string) {
	t.Helper()
	if rep.Err == nil || rep.Err.Errno != errno || !strings.Contains(rep.Err.Reason, want) {
		t.Errorf("%s = %+v, want errno %d with %q", what, rep.Err, errno, want)
	}
}

// With Enforce, a command runs only for a peer allowed it, and every
// command that may change something is published with its sender and
// outcome; reads are not.
func TestEnforceAndAudit(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w]
cmd = WORKER sleep

[circus]
read_users = games
`)
	var mu sync.Mutex
	var got []pubsub.Event
	tab, err := commands.New(e.a, commands.Options{Enforce: true, Publish: func(ev pubsub.Event) {
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	run := func(p access.Peer, cmd, props string) control.Reply {
		req := request(t, cmd, props)
		req.Peer = p
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return tab.Handle(ctx, req)
	}
	root := access.Peer{Origin: access.Local, UID: 0, GID: 0, PID: 77, Via: "control"}
	nobody := access.Peer{Origin: access.Local, UID: 65534, GID: 65534, Via: "control"}
	games := access.Peer{Origin: access.Local, UID: 5, GID: 60, Via: "control"}
	plugin := access.Peer{Origin: access.Internal, Name: "plugin watchdog", Via: "plugin"}

	refused(t, "incr by nobody", run(nobody, "incr", `{"name": "w", "waiting": true}`), control.CommandError,
		`permission denied: uid 65534 (nobody) may not run "incr"`)
	refused(t, "status by nobody", run(nobody, "status", `{"name": "w"}`), control.CommandError, "read_users")
	refused(t, "an unidentified peer", run(access.Peer{}, "status", ""), control.CommandError, "could not say who it is")
	if rep := run(games, "status", `{"name": "w"}`); rep.Err != nil {
		t.Errorf("status by a read user: %v", rep.Err)
	}
	// logs shows every worker's output: read rights, as tail.
	if rep := run(games, "logs", ""); rep.Err != nil {
		t.Errorf("logs by a read user: %v", rep.Err)
	}
	refused(t, "logs by nobody", run(nobody, "logs", ""), control.CommandError, "read_users")
	refused(t, "incr by a read user", run(games, "incr", `{"name": "w"}`), control.CommandError, "uid 5 (games)")
	if rep := run(root, "incr", `{"name": "w", "waiting": true}`); rep.Err != nil {
		t.Errorf("incr by root: %v", rep.Err)
	}
	if rep := run(plugin, "decr", `{"name": "w", "waiting": true}`); rep.Err != nil {
		t.Errorf("decr by a plugin: %v", rep.Err)
	}
	refused(t, "incr of a watcher that is not there", run(root, "incr", `{"name": "nosuch"}`), control.MessageError, "")

	mu.Lock()
	defer mu.Unlock()
	var lines []string
	for _, ev := range got {
		a := ev.Audit
		lines = append(lines, strings.Join([]string{pubsub.Topic(ev), a.Command, a.Peer, a.Status, string(a.Result)}, " | "))
	}
	want := []string{
		"watcher.w.command | incr | uid 65534 (nobody) | refused | ",
		"watcher.w.command | status | uid 65534 (nobody) | refused | ",
		"arbiter.command | status | unidentified peer | refused | ",
		"arbiter.command | logs | uid 65534 (nobody) | refused | ",
		"watcher.w.command | incr | uid 5 (games) | refused | ",
		`watcher.w.command | incr | uid 0 (root) pid 77 | ok | {"numprocesses":2}`,
		`watcher.w.command | decr | plugin watchdog | ok | {"numprocesses":1}`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit events:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if len(got) > 5 {
		a := got[5].Audit
		var props map[string]any
		if json.Unmarshal(a.Properties, &props) != nil || props["name"] != "w" || a.UID != 0 || a.PID != 77 || a.Via != "control" {
			t.Errorf("root's incr: %+v (properties %s)", a, a.Properties)
		}
		if got[0].Audit.UID != 65534 || !strings.Contains(got[0].Audit.Reason, "control_users") {
			t.Errorf("nobody's incr: %+v", got[0].Audit)
		}
	}
}

// reloadconfig applies edited access keys to the next command.
func TestAccessReload(t *testing.T) {
	t.Parallel()
	const ini = `
[watcher:w]
cmd = WORKER sleep

[circus]
read_users = %s
`
	e := start(t, fmt.Sprintf(ini, "games"))
	tab, err := commands.New(e.a, commands.Options{Enforce: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tab.Close()
	run := func(p access.Peer, cmd, props string) control.Reply {
		req := request(t, cmd, props)
		req.Peer = p
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return tab.Handle(ctx, req)
	}
	nobody := access.Peer{Origin: access.Local, UID: 65534, GID: 65534}
	root := access.Peer{Origin: access.Local, UID: 0, GID: 0}
	refused(t, "status by nobody", run(nobody, "status", ""), control.CommandError, "read_users")
	if err := os.WriteFile(e.a.Config().File, []byte(strings.ReplaceAll(fmt.Sprintf(ini, "nobody"), "WORKER", worker)), 0o644); err != nil {
		t.Fatal(err)
	}
	if rep := run(root, "reloadconfig", `{"waiting": true}`); rep.Err != nil {
		t.Fatalf("reloadconfig: %v", rep.Err)
	}
	if rep := run(nobody, "status", ""); rep.Err != nil {
		t.Errorf("status by nobody, now in read_users: %v", rep.Err)
	}
	refused(t, "incr by nobody", run(nobody, "incr", `{"name": "w"}`), control.CommandError, "control_users")
}
