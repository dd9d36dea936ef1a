package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// syslogLine is a message as syslog(3) sends it: priority, time, optional
// host, tag and pid, message.
var syslogLine = regexp.MustCompile(`^<(\d+)>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d (?:(\S+) )?ringmaster\[(\d+)\]: (.*)$`)

// waitSyslog waits until a message of priority pri whose text holds want
// has come, and returns it parsed.
func waitSyslog(t *testing.T, what string, msgs func() []string, pri int, want string) []string {
	t.Helper()
	var m []string
	waitFor(t, what, 20*time.Second, func() bool {
		for _, s := range msgs() {
			if p := syslogLine.FindStringSubmatch(s); p != nil && p[1] == fmt.Sprint(pri) && strings.Contains(p[4], want) {
				m = p
				return true
			}
		}
		return false
	})
	return m
}

// logoutput = syslog:///PATH?local3 sends the arbiter's log to the local
// syslog daemon at PATH, each line with the priority of its level in
// facility local3 (19), and the tag and pid of syslog(3).
func TestLogToLocalSyslog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sink := testproc.NewUnixgramSink(t, filepath.Join(dir, "log"))
	a := startCtl(t, dir, fmt.Sprintf("[watcher:web]\ncmd = WORKER sleep\n\n[circus]\npubsub_endpoint = tcp://127.0.0.1:0\nlogoutput = syslog://%s?local3\n", sink.Path))
	pid := a.cmd.Process.Pid
	m := waitSyslog(t, "the arbiter's start in syslog", sink.Packets, 19*8+6, `msg="arbiter started"`)
	if m[2] != "" || m[3] != fmt.Sprint(pid) || strings.Contains(m[4], "time=") || !strings.HasPrefix(m[4], "level=INFO ") {
		t.Errorf("local syslog message %q: want no host, pid %d, the level and no time of its own", m[0], pid)
	}
	// An error has its own priority: err, 19*8+3.
	if err := os.WriteFile(a.ini, []byte("[watcher:web]\nnumprocesses = ten\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitSyslog(t, "the refused reload in syslog", sink.Packets, 19*8+3, `msg="reload refused; keeping the running configuration"`)
	a.stop(t, syscall.SIGTERM)
	waitSyslog(t, "the arbiter's stop in syslog", sink.Packets, 19*8+6, `msg="arbiter stopped"`)
	if out := a.out.String(); strings.Contains(out, "arbiter started") {
		t.Errorf("the log went to stdout as well:\n%s", out)
	}
}

// --log-output syslog://127.0.0.1:PORT?daemon sends it over UDP, with the
// host's name, at every level asked for: debug 3*8+7, info 3*8+6; the flag
// wins over the file's logoutput.
func TestLogToRemoteSyslog(t *testing.T) {
	t.Parallel()
	sink := testproc.NewUDPSink(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "circus.ini")
	writeINI(t, path, fmt.Sprintf("[watcher:web]\ncmd = WORKER sleep\n\n[circus]\npubsub_endpoint = tcp://127.0.0.1:0\nlogoutput = %s\n", filepath.Join(dir, "file.log")))
	a := startArbiter(t, "--log-output", fmt.Sprintf("syslog://127.0.0.1:%d?daemon", sink.Port), "--log-level", "debug", path)
	host, _ := os.Hostname()
	m := waitSyslog(t, "an info line over UDP", sink.Packets, 3*8+6, `msg=spawned watcher=web`)
	if m[2] != host {
		t.Errorf("remote syslog message %q: want host %q", m[0], host)
	}
	a.stop(t, syscall.SIGTERM)
	// The stop signals the worker, at debug level; the last lines are sent
	// before the arbiter exits.
	waitSyslog(t, "a debug line over UDP", sink.Packets, 3*8+7, "level=DEBUG msg=signalled")
	if b, err := os.ReadFile(filepath.Join(dir, "file.log")); err == nil && len(b) > 0 {
		t.Errorf("the file's logoutput was written although the flag names syslog:\n%s", b)
	}
}

// --log-format json (or [circus] logformat = json) makes every line one
// JSON object with time, level and msg; the flag wins over the file.
func TestLogFormatJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, circus string
		args         []string
		json         bool
	}{
		{"flag", "", []string{"--log-format", "json"}, true},
		{"file", "logformat = json\n", nil, true},
		{"flag over file", "logformat = json\n", []string{"--log-format", "text"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "circus.ini")
			writeINI(t, path, "[watcher:web]\ncmd = WORKER sleep\n\n[circus]\npubsub_endpoint = tcp://127.0.0.1:0\n"+tt.circus)
			a := startArbiter(t, append(tt.args, path)...)
			waitFor(t, "the arbiter started", 20*time.Second, func() bool { return strings.Contains(a.out.String(), "arbiter started") })
			a.stop(t, syscall.SIGTERM)
			lines := strings.Split(strings.TrimSpace(a.out.String()), "\n")
			for _, l := range lines {
				var rec struct {
					Time  time.Time `json:"time"`
					Level string    `json:"level"`
					Msg   string    `json:"msg"`
				}
				err := json.Unmarshal([]byte(l), &rec)
				switch {
				case !tt.json && err == nil:
					t.Errorf("a JSON line in text format: %s", l)
				case tt.json && (err != nil || rec.Time.IsZero() || rec.Level == "" || rec.Msg == ""):
					t.Errorf("line %q: %v; want a JSON object with time, level and msg", l, err)
				}
			}
			if len(lines) < 3 {
				t.Errorf("only %d lines:\n%s", len(lines), a.out.String())
			}
		})
	}
}

// A bad -log-format or -log-output is a usage error; a syslog that is not
// there fails the start.
func TestLogSettingsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "circus.ini")
	writeINI(t, path, "[watcher:web]\ncmd = WORKER sleep\n")
	for _, tt := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--log-format", "yaml"}, 2, `arbiter: -log-format: "yaml" is not a log format (text or json)`},
		{[]string{"--log-output", "syslog://host?local9"}, 2, `arbiter: -log-output: "syslog://host?local9": unknown syslog facility "local9"`},
		{[]string{"--log-output", "syslog://" + dir + "/nolog"}, 1, "arbiter: log output syslog://" + dir + "/nolog: dial unixgram " + dir + "/nolog: connect: no such file or directory"},
		{[]string{"--log-output", dir + "/no/such/dir/arbiter.log"}, 1, "arbiter: log output: open " + dir + "/no/such/dir/arbiter.log: no such file or directory"},
	} {
		code, out := runToExit(t, append(tt.args, path)...)
		if code != tt.code || !strings.Contains(out, tt.want) {
			t.Errorf("arbiter %v: exit %d, output:\n%s\nwant exit %d and %q", tt.args, code, out, tt.code, tt.want)
		}
	}
}
