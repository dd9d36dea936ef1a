package main

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ringmaster-dev/ringmaster/control"
)

// Each command prints its reply as Circus's circusctl does where scripts
// read it, and as an aligned table where Circus runs fields together.
func TestOutput(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"list"}, "circusd-stats,sleeper,web srv\n"},
		{[]string{"list", "sleeper"}, "101,102\n"},
		{[]string{"status"}, "circusd-stats: active\nsleeper: active\nweb srv: stopped\n"},
		{[]string{"status", "sleeper"}, "active\n"},
		{[]string{"numprocesses"}, "5\n"},
		{[]string{"numprocesses", "sleeper"}, "2\n"},
		{[]string{"numwatchers"}, "3\n"},
		{[]string{"incr", "sleeper"}, "ok\n"},
		{[]string{"incr", "sleeper", "--waiting"}, "3\n"},
		{[]string{"decr", "single"}, "This watcher is a Singleton - not changing the number of processes\n"},
		{[]string{"restart", "sleeper", "--waiting"}, "ok\n"},
		{[]string{"start"}, "ok\n"},
		{[]string{"stop", "web"}, "ok\n"},
		{[]string{"reload"}, "ok\n"},
		{[]string{"reloadconfig"}, "ok\n"},
		{[]string{"quit"}, "ok\n"},
		{[]string{"add", "x", "sleep"}, "ok\n"},
		{[]string{"rm", "x"}, "ok\n"},
		{[]string{"set", "web", "numprocesses", "2"}, "ok\n"},
		{[]string{"signal", "web", "HUP"}, "ok\n"},
		{[]string{"kill", "web"}, "ok\n"},
		{[]string{"get", "web", "numprocesses", "uid", "send_hup", "env", "graceful_timeout"},
			"numprocesses:     3\nuid:\nsend_hup:         True\nenv:              A=1,B=2\ngraceful_timeout: 30.0\n"},
		{[]string{"get", "web", "numprocesses"}, "numprocesses: 3\n"},
		{[]string{"options", "web"}, "" +
			"numprocesses: 2\n" +
			"warmup_delay: 0.0\n" +
			"working_dir:  /srv\n" +
			"uid:\n" +
			"send_hup:     False\n" +
			"env:          HOME=/root,PORT=8080\n" +
			"args:         [\"-v\"]\n" +
			"cmd:          sleep 60\n"},
		{[]string{"globaloptions"}, "" +
			"endpoint:           tcp://127.0.0.1:5555\n" +
			"stats_endpoint:     tcp://127.0.0.1:5557\n" +
			"pubsub_endpoint:    tcp://127.0.0.1:5556\n" +
			"check_delay:        5.0\n" +
			"multicast_endpoint: udp://237.219.251.97:12027\n"},
		{[]string{"globaloptions", "check_delay"}, "check_delay: 5.0\n"},
		{[]string{"listsockets"}, "" +
			"FD  NAME   ADDRESS          BACKLOG\n" +
			"7   web    127.0.0.1:18080  2048\n" +
			"8   admin  /run/admin.sock  128\n"},
		{[]string{"stats"}, "" +
			"WATCHER  PID    CMD    USER  NICE  RSS    VMS    CPU%  MEM%   CTIME    AGE\n" +
			"sleeper  101    sleep  root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n" +
			"           150  cat    root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n" +
			"         102    sleep  root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n" +
			"web srv  103    No such process (stopped?)\n"},
		{[]string{"stats", "sleeper", "102"}, "" +
			"WATCHER  PID  CMD    USER  NICE  RSS    VMS    CPU%  MEM%   CTIME    AGE\n" +
			"sleeper  102  sleep  root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n"},
		{[]string{"dstats"}, "" +
			"PROCESS  PID    CMD      USER  NICE  RSS    VMS    CPU%  MEM%   CTIME    AGE\n" +
			"arbiter  900    arbiter  root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n" +
			"           901  sh       root  0     512B   1.00M  0.0   0.0    0:00.00  -\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := runCtl(t, nil, "", append([]string{"--endpoint", arb.endpoint()}, tc.args...)...)
			if r.code != exitOK || r.stdout != tc.want || r.stderr != "" {
				t.Errorf("circusctl %s = exit %d, stderr %q, stdout\n%s\nwant exit 0, stdout\n%s",
					strings.Join(tc.args, " "), r.code, r.stderr, r.stdout, tc.want)
			}
		})
	}
}

// stats NAME shows one watcher's processes by pid, children under their
// parent.
func TestStatsName(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	r := runCtl(t, nil, "", "--endpoint", arb.endpoint(), "stats", "sleeper")
	want := "" +
		"WATCHER  PID    CMD    USER  NICE  RSS    VMS    CPU%  MEM%   CTIME    AGE\n" +
		"sleeper  101    sleep  root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n" +
		"           150  cat    root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n" +
		"         102    sleep  root  0     1.34M  2.44M  0.0   0.006  0:00.20  1m5s\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("circusctl stats sleeper = exit %d, stderr %q, stdout\n%s\nwant\n%s", r.code, r.stderr, r.stdout, want)
	}
}

// --json prints the reply frame as it came; --prettify indents it with
// sorted keys, as Circus's prettify does. An error reply is printed too,
// and exits 0, as with Circus.
func TestJSON(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	ep := arb.endpoint()

	r := runCtl(t, nil, "", "--endpoint", ep, "--json", "list")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, `{"status": "ok", "time": `) ||
		!strings.Contains(r.stdout, `, "watchers": ["circusd-stats", "sleeper", "web srv"], "id": "`) || !strings.HasSuffix(r.stdout, "\"}\n") {
		t.Errorf("circusctl --json list = exit %d, stdout %q", r.code, r.stdout)
	}

	r = runCtl(t, nil, "", "--endpoint", ep, "--json", "--prettify", "status", "sleeper")
	lines := strings.Split(r.stdout, "\n")
	if r.code != exitOK || len(lines) != 6 || lines[0] != "{" || !strings.HasPrefix(lines[1], `  "id": "`) ||
		lines[2] != `  "status": "active",` || !strings.HasPrefix(lines[3], `  "time": 17`) || lines[4] != "}" {
		t.Errorf("circusctl --json --prettify status sleeper = exit %d, stdout\n%s", r.code, r.stdout)
	}

	r = runCtl(t, nil, "", "--endpoint", ep, "--json", "options", "nope")
	if r.code != exitOK || !strings.Contains(r.stdout, `"status": "error", "reason": "program nope not found"`) || r.stderr != "" {
		t.Errorf("circusctl --json options nope = exit %d, stdout %q, stderr %q; want exit 0 and the error reply", r.code, r.stdout, r.stderr)
	}
}

// Circus's exit statuses: 3 for an error reply (its reason on stderr), 1
// for a timeout or a connection failure.
func TestExitStatus(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	ep := arb.endpoint()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := "tcp://" + l.Addr().String()
	l.Close()
	// A listener that never accepts: the kernel completes the TCP
	// handshake, nothing answers ZeroMQ's.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { silent.Close() })

	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"error reply", []string{"--endpoint", ep, "options", "nope"}, exitError, "error: program nope not found\n"},
		{"missing key", []string{"--endpoint", ep, "get", "web", "flapping"}, exitError, "error: 'flapping' option not found\n"},
		{"ipython", []string{"--endpoint", ep, "ipython"}, exitError, "error: ipython is not supported\n"},
		{"timeout", []string{"--endpoint", ep, "--timeout", "0.2", "status", "slow"}, exitFailure, "circusctl status: timed out after 200ms"},
		{"refused", []string{"--endpoint", refused, "status"}, exitFailure, "connection refused"},
		{"silent", []string{"--endpoint", "tcp://" + silent.Addr().String(), "--timeout", "0.2", "status"}, exitFailure, "circusctl status: timed out after 200ms"},
		{"bad endpoint", []string{"--endpoint", "udp://x", "status"}, exitFailure, "want tcp://host:port or ipc:///path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := runCtl(t, nil, "", tc.args...)
			if r.code != tc.code || !strings.HasPrefix(r.stderr, tc.stderr) && !strings.Contains(r.stderr, tc.stderr) || r.stdout != "" {
				t.Errorf("circusctl %s = exit %d, stdout %q, stderr %q; want exit %d, stderr %q",
					strings.Join(tc.args, " "), r.code, r.stdout, r.stderr, tc.code, tc.stderr)
			}
		})
	}
}

// The control endpoint is --endpoint, else $CIRCUSCTL_ENDPOINT, else
// Circus's default.
func TestEndpoint(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	env := map[string]string{"CIRCUSCTL_ENDPOINT": arb.endpoint()}
	if r := runCtl(t, env, "", "numwatchers"); r.code != exitOK || r.stdout != "3\n" {
		t.Errorf("CIRCUSCTL_ENDPOINT=%s circusctl numwatchers = exit %d, %q, %q", arb.endpoint(), r.code, r.stdout, r.stderr)
	}
	env = map[string]string{"CIRCUSCTL_ENDPOINT": "tcp://127.0.0.1:1"}
	if r := runCtl(t, env, "", "--endpoint", arb.endpoint(), "numwatchers"); r.code != exitOK || r.stdout != "3\n" {
		t.Errorf("--endpoint does not beat CIRCUSCTL_ENDPOINT: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	if n := len(arb.requests()); n != 2 {
		t.Errorf("the arbiter got %d requests, want 2", n)
	}
	g := globals{}
	if got := g.controlEndpoint(environ{getenv: func(string) string { return "" }}); got != "tcp://127.0.0.1:5555" {
		t.Errorf("default control endpoint = %s, want tcp://127.0.0.1:5555", got)
	}
}

// The built program exits as Circus's does, reading CIRCUSCTL_ENDPOINT
// from its real environment.
func TestProcessExitStatus(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, func(req control.Request) control.Reply {
		if req.Command == "status" {
			return control.Failf(control.MessageError, "program web not found")
		}
		return cannedReply(req)
	})
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
	}{
		{[]string{"list"}, 0, "circusd-stats,sleeper,web srv\n"},
		{[]string{"status", "web"}, 3, ""},
		{[]string{"--json", "status", "web"}, 0, `{"status": "error", "reason": "program web not found"`},
		{[]string{"incr", "web", "x"}, 1, ""},
		{[]string{"incr"}, 2, ""},
	} {
		cmd := exec.Command(os.Args[0], tc.args...)
		cmd.Env = append(os.Environ(), helperEnv+"=1", "CIRCUSCTL_ENDPOINT="+arb.endpoint())
		out, err := cmd.Output()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.code || !strings.HasPrefix(string(out), tc.stdout) {
			t.Errorf("circusctl %s = exit %d, stdout %q; want exit %d, stdout starting %q", strings.Join(tc.args, " "), code, out, tc.code, tc.stdout)
		}
	}
}
