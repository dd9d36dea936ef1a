package commands_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
)

// infoINI has a pool with a name in mixed case and a space, a plain
// watcher and one left stopped (autostart = false).
const infoINI = `
[watcher:Web Srv]
cmd = WORKER sleep
numprocesses = 2

[watcher:sleeper]
cmd = WORKER sleep
graceful_timeout = 3
stop_signal = INT
myplugin.key = hello

[watcher:manual]
cmd = WORKER sleep
autostart = false

[env:sleeper]
FOO = bar
`

// The table knows exactly Circus 0.19's commands (§2.4), and Ringmaster's
// logs, upgrade and upgradestatus.
func TestNames(t *testing.T) {
	t.Parallel()
	want := []string{"add", "decr", "dstats", "get", "globaloptions", "incr", "ipython", "kill", "list", "listen",
		"listsockets", "logs", "numprocesses", "numwatchers", "options", "quit", "reload", "reloadconfig", "restart", "rm",
		"set", "signal", "start", "stats", "status", "stop", "tail", "upgrade", "upgradestatus"}
	got := commands.Names()
	slices.Sort(got)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Names() mismatch (-want +got):\n%s", diff)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	pool := e.waitPool("Web Srv", 2)

	// Circus lists the lower-cased names, sorted (§2.7).
	if got, want := e.ok("list", ""), `{"status": "ok", "time": 1700000000.5, "watchers": ["manual", "sleeper", "web srv"], "id": 1}`; got != want {
		t.Errorf("list =\n%s\nwant\n%s", got, want)
	}
	// Commands and names are matched without regard to case.
	o := replyObject(t, e.call("LIST", `{"name": "WEB SRV"}`))
	if want := []string{"status", "time", "pids", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("list name keys = %v, want %v", o.keys, want)
	}
	var pids []int
	o.get(t, "pids", &pids)
	slices.Sort(pids)
	if !slices.Equal(pids, pool) {
		t.Errorf("list name pids = %v, want %v", pids, pool)
	}
	if got, want := e.ok("list", `{"name": "manual"}`), `{"status": "ok", "time": 1700000000.5, "pids": [], "id": 1}`; got != want {
		t.Errorf("list of a stopped watcher =\n%s\nwant\n%s", got, want)
	}
	e.fails("list", `{"name": "nope"}`, control.MessageError, "program nope not found")
}

func TestStatus(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)

	// Circus's quirk: status with a name puts the state in "status".
	for name, want := range map[string]string{
		"sleeper": `{"status": "active", "time": 1700000000.5, "id": 1}`,
		"manual":  `{"status": "stopped", "time": 1700000000.5, "id": 1}`,
		"WEB SRV": `{"status": "active", "time": 1700000000.5, "id": 1}`,
	} {
		if got := e.ok("status", fmt.Sprintf(`{"name": %q}`, name)); got != want {
			t.Errorf("status %s =\n%s\nwant\n%s", name, got, want)
		}
	}
	e.fails("status", `{"name": "nope"}`, control.MessageError, "program nope not found")

	o := replyObject(t, e.call("status", ""))
	if want := []string{"status", "time", "statuses", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("status keys = %v, want %v", o.keys, want)
	}
	var st map[string]string
	o.get(t, "statuses", &st)
	// Circus keys statuses by watcher.name, the name as configured (only
	// list lower-cases): {"Web Srv": "active", ...}.
	want := map[string]string{"Web Srv": "active", "sleeper": "active", "manual": "stopped"}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("statuses mismatch (-want +got):\n%s", diff)
	}
}

func TestNumProcessesAndWatchers(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	e.waitPool("Web Srv", 2)

	if got, want := e.ok("numprocesses", ""), `{"status": "ok", "time": 1700000000.5, "numprocesses": 3, "id": 1}`; got != want {
		t.Errorf("numprocesses =\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok("numprocesses", `{"name": "Web Srv"}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 2, "watcher_name": "Web Srv", "id": 1}`; got != want {
		t.Errorf("numprocesses name =\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok("numprocesses", `{"name": "manual"}`), `{"status": "ok", "time": 1700000000.5, "numprocesses": 0, "watcher_name": "manual", "id": 1}`; got != want {
		t.Errorf("numprocesses of a stopped watcher =\n%s\nwant\n%s", got, want)
	}
	e.fails("numprocesses", `{"name": "nope"}`, control.MessageError, "program nope not found")
	if got, want := e.ok("numwatchers", ""), `{"status": "ok", "time": 1700000000.5, "numwatchers": 3, "id": 1}`; got != want {
		t.Errorf("numwatchers =\n%s\nwant\n%s", got, want)
	}
}

// Circus answers with the name as the request spelled it
// (props['name']), not as configured.
func TestNameEchoedAsSent(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	e.waitPool("Web Srv", 2)
	o := replyObject(t, e.call("numprocesses", `{"name": "WEB SRV"}`))
	var name string
	o.get(t, "watcher_name", &name)
	if name != "WEB SRV" {
		t.Errorf("numprocesses {name: WEB SRV}: watcher_name = %q, want %q (Circus echoes props['name'])", name, "WEB SRV")
	}
	o = replyObject(t, e.call("stats", `{"name": "WEB SRV"}`))
	o.get(t, "name", &name)
	if name != "WEB SRV" {
		t.Errorf("stats {name: WEB SRV}: name = %q, want %q (Circus echoes props['name'])", name, "WEB SRV")
	}
}

func TestOptions(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	o := replyObject(t, e.call("options", `{"name": "sleeper"}`))
	if want := []string{"status", "time", "options", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("options reply keys = %v, want %v", o.keys, want)
	}
	opts := o.sub(t, "options")
	// Circus's option names (watcher.optnames) plus the free-form key,
	// sorted, as Circus's sorted(self.optnames) gives them.
	want := []string{"args", "close_child_stderr", "close_child_stdin", "close_child_stdout", "cmd", "copy_env",
		"env", "executable", "gid", "graceful_timeout", "max_age", "max_age_variance", "max_retry", "myplugin.key",
		"numprocesses", "on_demand", "priority", "respawn", "send_hup", "shell", "shell_args", "singleton",
		"stderr_stream_conf", "stdout_stream_conf", "stop_children", "stop_signal", "uid", "use_sockets",
		"warmup_delay", "working_dir"}
	if diff := cmp.Diff(want, opts.keys); diff != "" {
		t.Errorf("options keys mismatch (-want +got):\n%s", diff)
	}
	// The raw JSON shows the types: ints without a point, floats with.
	for k, raw := range map[string]string{
		"numprocesses":       `1`,
		"graceful_timeout":   `3.0`,
		"warmup_delay":       `0.0`,
		"stop_signal":        `2`,
		"env":                `{"FOO": "bar"}`,
		"uid":                `null`,
		"gid":                `null`,
		"working_dir":        `null`,
		"cmd":                fmt.Sprintf("%q", worker+" sleep"),
		"respawn":            `true`,
		"singleton":          `false`,
		"max_retry":          `5`,
		"max_age":            `0`,
		"myplugin.key":       `"hello"`,
		"stdout_stream_conf": `{}`,
	} {
		if got := string(opts.m[k]); got != raw {
			t.Errorf("options[%s] = %s, want %s", k, got, raw)
		}
	}
	e.fails("options", `{"name": "nope"}`, control.MessageError, "program nope not found")
	e.fails("options", `{}`, control.MessageError, "message invalid 'name' is missing")
}

// Only Circus's option names and free-form keys are options: keys that
// Circus reads into other attributes (autostart, rlimit_*, stream and hook
// keys) are not, so get refuses them as Circus does.
func TestOptionsOnlyFreeFormExtras(t *testing.T) {
	t.Parallel()
	e := start(t, `
[watcher:w]
cmd = WORKER sleep
autostart = true
rlimit_nofile = 4096
stdout_stream.class = StdoutStream
`)
	opts := replyObject(t, e.call("options", `{"name": "w"}`)).sub(t, "options")
	for _, k := range []string{"autostart", "rlimit_nofile", "stdout_stream.class"} {
		if raw, ok := opts.m[k]; ok {
			t.Errorf("options has %q = %s; Circus has no such option", k, raw)
		}
	}
	if got, want := string(opts.m["stdout_stream_conf"]), `{"class": "StdoutStream"}`; got != want {
		t.Errorf("options stdout_stream_conf = %s, want %s", got, want)
	}
	e.fails("get", `{"name": "w", "keys": ["autostart"]}`, control.MessageError, "'autostart' option not found")
}

func TestGet(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	// In the order asked, with the types of options.
	got := e.ok("get", `{"name": "sleeper", "keys": ["numprocesses", "graceful_timeout", "env", "uid", "myplugin.key"]}`)
	want := `{"status": "ok", "time": 1700000000.5, "options": {"numprocesses": 1, "graceful_timeout": 3.0, "env": {"FOO": "bar"}, "uid": null, "myplugin.key": "hello"}, "id": 1}`
	if got != want {
		t.Errorf("get =\n%s\nwant\n%s", got, want)
	}
	if got, want := e.ok("get", `{"name": "sleeper", "keys": []}`), `{"status": "ok", "time": 1700000000.5, "options": {}, "id": 1}`; got != want {
		t.Errorf("get no keys =\n%s\nwant\n%s", got, want)
	}
	e.fails("get", `{"name": "sleeper", "keys": ["numprocesses", "k"]}`, control.MessageError, "'k' option not found")
	e.fails("get", `{"name": "sleeper"}`, control.MessageError, "message invalid 'keys' is missing")
	e.fails("get", `{"name": "nope", "keys": ["cmd"]}`, control.MessageError, "program nope not found")
}

func TestGlobalOptions(t *testing.T) {
	t.Parallel()
	e := start(t, `
[circus]
endpoint = tcp://127.0.0.1:15555
pubsub_endpoint = tcp://127.0.0.1:15556
stats_endpoint = tcp://127.0.0.1:15557
check_delay = 2.5

[watcher:w]
cmd = WORKER sleep
`)
	o := replyObject(t, e.call("globaloptions", ""))
	opts := o.sub(t, "options")
	if want := []string{"endpoint", "stats_endpoint", "pubsub_endpoint", "check_delay", "multicast_endpoint"}; !slices.Equal(opts.keys, want) {
		t.Errorf("globaloptions keys = %v, want %v", opts.keys, want)
	}
	for k, raw := range map[string]string{
		"endpoint":        `"tcp://127.0.0.1:15555"`,
		"pubsub_endpoint": `"tcp://127.0.0.1:15556"`,
		"stats_endpoint":  `"tcp://127.0.0.1:15557"`,
		"check_delay":     `2.5`,
	} {
		if got := string(opts.m[k]); got != raw {
			t.Errorf("globaloptions %s = %s, want %s", k, got, raw)
		}
	}
	want := `{"status": "ok", "time": 1700000000.5, "options": {"pubsub_endpoint": "tcp://127.0.0.1:15556"}, "id": 1}`
	if got := e.ok("globaloptions", `{"option": "pubsub_endpoint"}`); got != want {
		t.Errorf("globaloptions pubsub_endpoint =\n%s\nwant\n%s", got, want)
	}
	// The docs call the property keys.
	if got := e.ok("globaloptions", `{"keys": ["pubsub_endpoint"]}`); got != want {
		t.Errorf("globaloptions keys=[pubsub_endpoint] =\n%s\nwant\n%s", got, want)
	}
	// circus/commands/globaloptions.py: MessageError('%r not an existing
	// option' % wanted).
	e.fails("globaloptions", `{"option": "nope"}`, control.MessageError, "'nope' not an existing option")
}

func TestListSockets(t *testing.T) {
	t.Parallel()
	e := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[socket:local]
path = DIR/local.sock

[socket:api]
host = 127.0.0.1
port = 0
backlog = 10

[watcher:w]
cmd = WORKER sleep
`)
	o := replyObject(t, e.call("listsockets", ""))
	var socks []json.RawMessage
	o.get(t, "sockets", &socks)
	if len(socks) != 3 {
		t.Fatalf("listsockets: %d sockets, want 3", len(socks))
	}
	byName := map[string]string{}
	for _, s := range e.a.Sockets() {
		if s.Spec().Path != "" {
			byName[s.Name()] = fmt.Sprintf(`{"fd": %d, "name": %q, "backlog": 2048, "path": %q}`, s.FD(), s.Name(), s.Spec().Path)
		} else {
			byName[s.Name()] = fmt.Sprintf(`{"fd": %d, "name": %q, "backlog": %d, "host": "127.0.0.1", "port": %d}`, s.FD(), s.Name(), s.Spec().Backlog, s.Port())
		}
	}
	lastFD := 2
	for _, raw := range socks {
		s := decodeObject(t, raw)
		var fd int
		var name string
		s.get(t, "fd", &fd)
		s.get(t, "name", &name)
		if fd <= lastFD {
			t.Errorf("socket %s has fd %d after fd %d: want fds > 2, ascending", name, fd, lastFD)
		}
		lastFD = fd
		if got := string(raw); got != byName[name] {
			t.Errorf("socket %s = %s, want %s", name, got, byName[name])
		}
	}
	if !strings.HasSuffix(byName["local"], `"path": "`+filepath.Join(filepath.Dir(e.a.Config().File), "local.sock")+`"}`) {
		t.Errorf("unix socket = %s, want its path", byName["local"])
	}

	none := start(t, `
[watcher:w]
cmd = WORKER sleep
`)
	if got, want := none.ok("listsockets", ""), `{"status": "ok", "time": 1700000000.5, "sockets": [], "id": 1}`; got != want {
		t.Errorf("listsockets without sockets =\n%s\nwant\n%s", got, want)
	}
}

// infoKeys are a worker's process info fields, in Circus's order.
var infoKeys = []string{"mem_info1", "mem_info2", "cpu", "mem", "ctime", "pid", "username", "nice", "create_time",
	"age", "cmdline", "children", "started", "wid"}

func TestStats(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	pool := e.waitPool("Web Srv", 2)
	sleeper := e.waitPool("sleeper", 1)

	// No name: every watcher by its name, each worker by its pid.
	o := replyObject(t, e.call("stats", ""))
	if want := []string{"status", "time", "infos", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("stats keys = %v, want %v", o.keys, want)
	}
	infos := o.sub(t, "infos")
	want := []string{"Web Srv", "manual", "sleeper"}
	got := slices.Clone(infos.keys)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("stats infos keys = %v, want %v", infos.keys, want)
	}
	checkInfos := func(what string, o object, pids []int) {
		t.Helper()
		var got []string
		for _, p := range pids {
			got = append(got, fmt.Sprint(p))
		}
		keys := slices.Clone(o.keys)
		slices.Sort(keys)
		slices.Sort(got)
		if !slices.Equal(keys, got) {
			t.Errorf("%s: pids %v, want %v", what, keys, got)
		}
		for _, k := range o.keys {
			in := o.sub(t, k)
			if !slices.Equal(in.keys, infoKeys) {
				t.Errorf("%s[%s] keys = %v, want %v", what, k, in.keys, infoKeys)
			}
			var pid int
			in.get(t, "pid", &pid)
			if fmt.Sprint(pid) != k {
				t.Errorf("%s[%s] pid = %d", what, k, pid)
			}
		}
	}
	checkInfos("stats infos[Web Srv]", infos.sub(t, "Web Srv"), pool)
	checkInfos("stats infos[sleeper]", infos.sub(t, "sleeper"), sleeper)
	checkInfos("stats infos[manual]", infos.sub(t, "manual"), nil)

	o = replyObject(t, e.call("stats", `{"name": "Web Srv"}`))
	if want := []string{"status", "time", "name", "info", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("stats name keys = %v, want %v", o.keys, want)
	}
	checkInfos("stats name info", o.sub(t, "info"), pool)

	o = replyObject(t, e.call("stats", fmt.Sprintf(`{"name": "Web Srv", "process": %d, "extended": true}`, pool[1])))
	if want := []string{"status", "time", "process", "info", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("stats process keys = %v, want %v", o.keys, want)
	}
	if got := string(o.m["process"]); got != fmt.Sprint(pool[1]) {
		t.Errorf("stats process = %s, want %d", got, pool[1])
	}
	if in := o.sub(t, "info"); !slices.Equal(in.keys, infoKeys) {
		t.Errorf("stats process info keys = %v, want %v", in.keys, infoKeys)
	}

	// A worker that is gone: Circus's MessageError("process %r not found
	// in %r" % (props['process'], props['name'])).
	victim := sleeper[0]
	e.ok("kill", fmt.Sprintf(`{"name": "sleeper", "pid": %d, "waiting": true}`, victim))
	e.fails("stats", fmt.Sprintf(`{"name": "sleeper", "process": %d}`, victim), control.MessageError,
		fmt.Sprintf("process %d not found in 'sleeper'", victim))
	e.fails("stats", `{"name": "nope"}`, control.MessageError, "program nope not found")
}

func TestDstats(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	pool := e.waitPool("Web Srv", 2)
	o := replyObject(t, e.call("dstats", ""))
	if want := []string{"status", "time", "info", "id"}; !slices.Equal(o.keys, want) {
		t.Errorf("dstats keys = %v, want %v", o.keys, want)
	}
	in := o.sub(t, "info")
	// The arbiter itself: no started or wid, but its children.
	if want := infoKeys[:len(infoKeys)-2]; !slices.Equal(in.keys, want) {
		t.Errorf("dstats info keys = %v, want %v", in.keys, want)
	}
	var pid int
	in.get(t, "pid", &pid)
	if pid != os.Getpid() {
		t.Errorf("dstats pid = %d, want the arbiter's %d", pid, os.Getpid())
	}
	var children []struct {
		Pid int `json:"pid"`
	}
	in.get(t, "children", &children)
	var kids []int
	for _, c := range children {
		kids = append(kids, c.Pid)
	}
	for _, p := range pool {
		if !slices.Contains(kids, p) {
			t.Errorf("dstats children %v lack worker %d", kids, p)
		}
	}
}

// listen and ipython are answered, never run: listen needs a SUB socket
// (circusctl opens one itself) and there is no Python to open a shell in.
func TestListenIPythonUnknown(t *testing.T) {
	t.Parallel()
	e := start(t, infoINI)
	e.fails("listen", "", control.MessageError, "invalid message. use a pub/sub socket")
	if rep := e.call("ipython", ""); rep.Err == nil || rep.Err.Errno != control.CommandError {
		t.Errorf("ipython = %s, want an errno 5 error", render(t, rep))
	}
	e.fails("frobnicate", "", control.UnknownCommand, "unknown command: 'frobnicate'")
	e.fails("Frobnicate", `{"name": "sleeper"}`, control.UnknownCommand, "unknown command: 'Frobnicate'")
}
