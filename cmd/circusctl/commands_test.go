package main

import (
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Every command line of reference §2.6 sends what Circus's circusctl
// sends, property for property and type for type, except where Circus's
// client is wrong: rm drops --waiting and --nostop, and kill sends pid
// and graceful_timeout as strings and drops --waiting.
func TestRequests(t *testing.T) {
	t.Parallel()
	type props = map[string]string
	for _, tc := range []struct {
		name    string
		args    []string
		command string
		props   props
	}{
		{"start all", []string{"start"}, "start", props{"waiting": `false`, "match": `"glob"`}},
		{"start name", []string{"start", "web"}, "start", props{"name": `"web"`, "waiting": `false`, "match": `"glob"`}},
		{"start flags after", []string{"start", "web*", "--waiting", "--match", "regex"}, "start",
			props{"name": `"web*"`, "waiting": `true`, "match": `"regex"`}},
		{"start match=", []string{"start", "--match=simple", "web"}, "start", props{"name": `"web"`, "waiting": `false`, "match": `"simple"`}},
		{"stop", []string{"stop", "web", "--waiting"}, "stop", props{"name": `"web"`, "waiting": `true`, "match": `"glob"`}},
		{"stop all", []string{"stop"}, "stop", props{"waiting": `false`, "match": `"glob"`}},
		{"restart", []string{"restart", "sleeper", "--waiting"}, "restart", props{"name": `"sleeper"`, "waiting": `true`, "match": `"glob"`}},
		{"restart arbiter", []string{"restart"}, "restart", props{"waiting": `false`, "match": `"glob"`}},
		{"reload", []string{"reload"}, "reload", props{"graceful": `true`, "waiting": `false`, "sequential": `false`}},
		{"reload name", []string{"reload", "web", "--terminate", "--waiting", "--sequential"}, "reload",
			props{"name": `"web"`, "graceful": `false`, "waiting": `true`, "sequential": `true`}},
		{"incr", []string{"incr", "sleeper"}, "incr", props{"name": `"sleeper"`, "waiting": `false`}},
		{"incr nb", []string{"incr", "sleeper", "3", "--waiting"}, "incr", props{"name": `"sleeper"`, "nb": `3`, "waiting": `true`}},
		{"decr", []string{"decr", "sleeper", "2"}, "decr", props{"name": `"sleeper"`, "nb": `2`, "waiting": `false`}},
		{"decr negative", []string{"decr", "sleeper", "-1"}, "decr", props{"name": `"sleeper"`, "nb": `-1`, "waiting": `false`}},
		{"add", []string{"add", "web", "python", "-m", "http.server", "--bind", "127.0.0.1"}, "add",
			props{"name": `"web"`, "cmd": `"python -m http.server --bind 127.0.0.1"`, "start": `false`}},
		{"add start", []string{"add", "--start", "web", "sleep 60"}, "add", props{"name": `"web"`, "cmd": `"sleep 60"`, "start": `true`}},
		{"add start after name", []string{"add", "web", "--start", "sleep", "60"}, "add", props{"name": `"web"`, "cmd": `"sleep 60"`, "start": `true`}},
		{"rm", []string{"rm", "web"}, "rm", props{"name": `"web"`, "waiting": `false`, "nostop": `false`}},
		{"rm flags (Circus drops them)", []string{"rm", "web", "--waiting", "--nostop"}, "rm",
			props{"name": `"web"`, "waiting": `true`, "nostop": `true`}},
		{"set ints bools signals", []string{"set", "web", "numprocesses", "4", "send_hup", "yes", "stop_signal", "SIGQUIT", "graceful_timeout", "2.5"}, "set",
			props{"name": `"web"`, "options": `{"graceful_timeout":2.5,"numprocesses":4,"send_hup":true,"stop_signal":3}`}},
		{"set waiting", []string{"set", "web", "respawn", "False", "--waiting"}, "set",
			props{"name": `"web"`, "options": `{"respawn":false}`, "waiting": `true`}},
		{"set hooks", []string{"set", "web", "hooks", "before_start:mod.start,after_stop:mod.stop"}, "set",
			props{"name": `"web"`, "options": `{"hooks":{"after_stop":"mod.stop","before_start":"mod.start"}}`}},
		{"set env", []string{"set", "web", "env", "A=1, B = two"}, "set", props{"name": `"web"`, "options": `{"env":{"A":"1","B":"two"}}`}},
		{"set strings", []string{"set", "web", "CMD", "sleep 5", "working_dir", "/srv", "uid", "www-data", "gid", "33"}, "set",
			props{"name": `"web"`, "options": `{"cmd":"sleep 5","gid":33,"uid":"www-data","working_dir":"/srv"}`}},
		{"set streams rlimit", []string{"set", "web", "stdout_stream.max_bytes", "1024", "stdout_stream.filename", "/tmp/x", "rlimit_nofile", "1024", "hooks.after_start", "m.f"}, "set",
			props{"name": `"web"`, "options": `{"hooks.after_start":"m.f","rlimit_nofile":1024,"stdout_stream.filename":"/tmp/x","stdout_stream.max_bytes":1024}`}},
		{"set rtmin", []string{"set", "web", "stop_signal", "rtmin+2"}, "set", props{"name": `"web"`, "options": `{"stop_signal":36}`}},
		{"get", []string{"get", "web", "numprocesses", "send_hup"}, "get", props{"name": `"web"`, "keys": `["numprocesses","send_hup"]`}},
		{"options", []string{"options", "web"}, "options", props{"name": `"web"`}},
		{"signal", []string{"signal", "web", "HUP"}, "signal",
			props{"name": `"web"`, "children": `false`, "recursive": `false`, "signum": `"HUP"`}},
		{"signal pid", []string{"signal", "web", "123", "--children", "9"}, "signal",
			props{"name": `"web"`, "pid": `123`, "children": `true`, "recursive": `false`, "signum": `"9"`}},
		{"signal recursive", []string{"signal", "web", "123", "USR1", "--recursive"}, "signal",
			props{"name": `"web"`, "pid": `123`, "children": `false`, "recursive": `true`, "signum": `"USR1"`}},
		{"kill", []string{"kill", "web"}, "kill", props{"name": `"web"`, "waiting": `false`}},
		{"kill fixed types", []string{"kill", "web", "123", "--signum", "TERM", "--graceful_timeout", "10", "--waiting"}, "kill",
			props{"name": `"web"`, "pid": `123`, "signum": `"TERM"`, "graceful_timeout": `10.0`, "waiting": `true`}},
		{"kill signum number", []string{"kill", "web", "--signum=9", "--graceful_timeout=0.5"}, "kill",
			props{"name": `"web"`, "signum": `9`, "graceful_timeout": `0.5`, "waiting": `false`}},
		{"stats", []string{"stats"}, "stats", props{"extended": `false`}},
		{"stats name pid", []string{"stats", "--extended", "web", "101"}, "stats", props{"extended": `true`, "name": `"web"`, "process": `101`}},
		{"quit", []string{"quit"}, "quit", props{"waiting": `false`}},
		{"quit waiting", []string{"quit", "--waiting"}, "quit", props{"waiting": `true`}},
		{"reloadconfig", []string{"reloadconfig", "--waiting"}, "reloadconfig", props{"waiting": `true`}},
		{"globaloptions", []string{"globaloptions"}, "globaloptions", props{}},
		{"globaloptions key", []string{"globaloptions", "check_delay"}, "globaloptions", props{"option": `"check_delay"`}},
		{"list", []string{"list"}, "list", props{}},
		{"list name", []string{"list", "web"}, "list", props{"name": `"web"`}},
		{"status", []string{"status"}, "status", props{"details": "true"}},
		{"status name", []string{"status", "web"}, "status", props{"name": `"web"`, "details": "true"}},
		{"numprocesses", []string{"numprocesses"}, "numprocesses", props{}},
		{"numprocesses name", []string{"numprocesses", "web"}, "numprocesses", props{"name": `"web"`}},
		{"numwatchers", []string{"numwatchers"}, "numwatchers", props{}},
		{"listsockets", []string{"listsockets"}, "listsockets", props{}},
		{"dstats", []string{"dstats"}, "dstats", props{}},
		{"ipython", []string{"ipython"}, "ipython", props{}},
		{"after --", []string{"signal", "--", "-web", "HUP"}, "signal",
			props{"name": `"-web"`, "children": `false`, "recursive": `false`, "signum": `"HUP"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			arb := newArbiter(t, nil)
			args := append([]string{"--endpoint", arb.endpoint()}, tc.args...)
			r := runCtl(t, nil, "", args...)
			if r.code != exitOK && r.code != exitError {
				t.Fatalf("circusctl %s = exit %d, stderr %q", strings.Join(tc.args, " "), r.code, r.stderr)
			}
			want := []request{{tc.command, tc.props}}
			if diff := cmp.Diff(want, arb.requests(), cmp.AllowUnexported(request{})); diff != "" {
				t.Errorf("circusctl %s sent (-want +got):\n%s", strings.Join(tc.args, " "), diff)
			}
		})
	}
}

// A command line that does not fit is exit 2 (usage), a value that does
// not convert exit 1, as with Circus; neither sends anything.
func TestArgumentErrors(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"unknown command", []string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{"too few", []string{"incr"}, exitUsage, "circusctl incr: too few arguments\nusage: circusctl incr NAME [NB] [--waiting]\n"},
		{"too many", []string{"status", "a", "b"}, exitUsage, "too many arguments: b"},
		{"unknown flag", []string{"rm", "web", "--force"}, exitUsage, "unknown flag --force"},
		{"switch with value", []string{"rm", "web", "--waiting=yes"}, exitUsage, "--waiting takes no value"},
		{"missing value", []string{"kill", "web", "--signum"}, exitUsage, "--signum needs a value (SIGNAL)"},
		{"bad choice", []string{"start", "web", "--match", "fuzzy"}, exitUsage, "--match fuzzy: want one of simple, glob, regex"},
		{"global after command", []string{"status", "--json"}, exitUsage, "--json is a global option"},
		{"set odd", []string{"set", "web", "numprocesses", "3", "shell"}, exitUsage, `"shell" has no value`},
		{"top duration", []string{"top", "--process-timeout", "soon"}, exitUsage, "--process-timeout soon"},
		{"unknown global", []string{"--verbose", "status"}, exitUsage, "flag provided but not defined: -verbose"},
		{"ssh", []string{"--ssh", "me@host:22", "status"}, exitUsage, "--ssh is not supported"},
		{"zero timeout", []string{"--timeout", "0", "status"}, exitUsage, "--timeout 0"},
		{"nb", []string{"incr", "web", "three"}, exitFailure, `NB "three" is not an integer`},
		{"pid", []string{"signal", "web", "x", "HUP"}, exitFailure, `PID "x" is not an integer`},
		{"graceful_timeout", []string{"kill", "web", "--graceful_timeout", "soon"}, exitFailure, `--graceful_timeout "soon" is not a number`},
		{"set int", []string{"set", "web", "numprocesses", "many"}, exitFailure, `numprocesses: "many" is not an integer`},
		{"set bool", []string{"set", "web", "shell", "maybe"}, exitFailure, `shell: "maybe" is not a boolean`},
		{"set signal", []string{"set", "web", "stop_signal", "SIGNOPE"}, exitFailure, "stop_signal: signal invalid: SIGNOPE"},
		{"set key", []string{"set", "web", "flapping.max_retry", "3"}, exitFailure, `unknown key "flapping.max_retry"`},
		{"set hook", []string{"set", "web", "hooks", "on_boot:m.f"}, exitFailure, `unknown hook "on_boot"`},
		{"set env", []string{"set", "web", "env", "JUSTKEY"}, exitFailure, `env: "JUSTKEY" is not KEY=VALUE`},
		// The nearest name, when one is near (issue 16).
		{"command near one", []string{"stattus"}, exitUsage, `unknown command "stattus"; did you mean "status"?`},
		{"flag near one", []string{"stop", "web", "--waitng"}, exitUsage, "unknown flag --waitng; did you mean --waiting?"},
		{"set key near one", []string{"set", "web", "numprocess", "3"}, exitFailure, `unknown key "numprocess"; did you mean "numprocesses"?`},
		{"set hook near one", []string{"set", "web", "hooks", "before_strat:m.f"}, exitFailure, `unknown hook "before_strat"; did you mean "before_start"?`},
		{"set hooks. key near one", []string{"set", "web", "hooks.after_stopp", "m.f"}, exitFailure, `unknown hook "after_stopp"; did you mean "after_stop"?`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--endpoint", arb.endpoint()}, tc.args...)
			if tc.name == "unknown global" || tc.name == "ssh" || tc.name == "zero timeout" {
				args = tc.args
			}
			r := runCtl(t, nil, "", args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
				t.Errorf("circusctl %s = exit %d, stdout %q, stderr %q; want exit %d, stderr containing %q",
					strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
		})
	}
	if reqs := arb.requests(); len(reqs) != 0 {
		t.Errorf("bad command lines sent %v", reqs)
	}
}

// top without a stats stream says what to set, not zmq4's dial error.
func TestTopWithoutStats(t *testing.T) {
	t.Parallel()
	endpoint := "tcp://127.0.0.1:" + strconv.Itoa(testproc.FreePort(t)) // nothing listens there
	r := runCtl(t, nil, "", "--endpoint", endpoint, "top")
	want := "circusctl top: no stats stream at " + endpoint + " (connect: connection refused):\n" +
		"the arbiter publishes stats only with statsd = true in its [circus] section"
	if r.code != exitFailure || !strings.HasPrefix(r.stderr, want) || strings.Contains(r.stderr, "zmq4") {
		t.Errorf("circusctl top with nothing listening = exit %d, stderr %q; want exit %d, stderr starting %q",
			r.code, r.stderr, exitFailure, want)
	}
}

// Circus's to_signum: numbers, names with or without SIG in any case, and
// real-time offsets.
func TestSignum(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want int
		ok   bool
	}{
		{"15", 15, true}, {"TERM", 15, true}, {"SIGTERM", 15, true}, {"term", 15, true}, {"SIGKILL", 9, true},
		{"HUP", 1, true}, {"SIGRTMIN+1", 35, true}, {"RTMAX", 64, true}, {"NOPE", 0, false}, {"TERM+x", 0, false}, {"", 0, false},
	} {
		got, err := signum(tc.in)
		if got != tc.want || (err == nil) != tc.ok {
			t.Errorf("signum(%q) = %d, %v; want %d, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
