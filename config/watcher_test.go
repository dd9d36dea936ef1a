package config

import (
	"os"
	"os/exec"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/sys/unix"
)

// TestWatcherOptions reads every typed watcher option once.
func TestWatcherOptions(t *testing.T) {
	t.Parallel()
	const ini = `[watcher:api]
cmd = /usr/bin/api --port $(circus.sockets.web)
args = --verbose
shell = yes
shell_args = -e
executable = /usr/bin/api2
working_dir = /srv
copy_env = true
copy_path = on
virtualenv = /venv
virtualenv_py_ver = 3.11
numprocesses = 0
warmup_delay = 0.5
autostart = false
respawn = False
on_demand = 1
priority = -3
max_retry = -1
graceful_timeout = 2.5
stop_signal = quit
stop_children = true
send_hup = true
max_age = 3600
max_age_variance = 0
use_sockets = true
stdin_socket = WEB
close_child_stdin = false
close_child_stdout = true
close_child_stderr = true
umask = 027
nice = -5
chroot = /jail
rlimit_nofile = 1024
rlimit_core =
rlimit_AS = -1
stderr_stream.class = FileStream
hooks.after_start = my.hook, true
custom = $(circus.env.NOPE_NOT_SET)

[socket:web]
port = 0
`
	c, err := Parse("t.ini", []byte(ini))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	want := &Watcher{
		Name: "api", Cmd: "/usr/bin/api --port $(circus.sockets.web)", Args: "--verbose", Shell: true, ShellArgs: "-e",
		Executable: "/usr/bin/api2", WorkingDir: "/srv", UID: -1, GID: -1,
		CopyEnv: true, CopyPath: true, Virtualenv: "/venv", VirtualenvPyVer: "3.11", Env: map[string]string{},
		NumProcesses: 0, WarmupDelay: 500 * time.Millisecond, OnDemand: true, Priority: -3, MaxRetry: -1, RestartDelay: 100 * time.Millisecond,
		GracefulTimeout: 2500 * time.Millisecond, StopSignal: syscall.SIGQUIT, StopChildren: true, SendHup: true,
		MaxAge: time.Hour, UseSockets: true, StdinSocket: "web",
		CloseChildStdout: true, CloseChildStderr: true, Umask: 0o27, Nice: -5, Chroot: "/jail",
		Rlimits: []Rlimit{
			{Name: "nofile", Resource: unix.RLIMIT_NOFILE, Value: 1024},
			{Name: "core", Resource: unix.RLIMIT_CORE, Value: unix.RLIM_INFINITY},
			{Name: "as", Resource: unix.RLIMIT_AS, Value: unix.RLIM_INFINITY},
		},
		FlapAttempts: 10, FlapWindow: 5 * time.Second, FlapRetryIn: 7 * time.Second, FlapMaxRetry: 5,
		StdoutStream: map[string]string{}, StderrStream: map[string]string{"class": "FileStream"},
		Stderr:    Stream{Class: "FileStream"},
		Health:    defaultHealth(),
		Ready:     defaultReady(),
		Limits:    defaultLimits(),
		Autoscale: defaultAutoscale(),
		ReadyzMin: -1,
		Hooks:     map[string]Hook{"after_start": {Command: "my.hook", Python: true, IgnoreErrors: true, Timeout: 30 * time.Second}},
	}
	got := c.Watchers[0]
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Watcher{}, "Options")); diff != "" {
		t.Errorf("watcher (-want +got):\n%s", diff)
	}
	if got.Options["custom"] != "$(circus.env.NOPE_NOT_SET)" || got.Options["numprocesses"] != "0" {
		t.Errorf("Options[custom], Options[numprocesses] = %q, %q", got.Options["custom"], got.Options["numprocesses"])
	}
}

// TestDefaults checks that a minimal watcher and socket get Circus's
// defaults.
func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.ini", []byte("[watcher:w]\ncmd = w\n[socket:S]\nhost = 0.0.0.0\n"))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	w := c.Watchers[0]
	got := []any{w.NumProcesses, w.Autostart, w.Respawn, w.MaxRetry, w.GracefulTimeout, w.StopSignal, w.MaxAgeVariance, w.CloseChildStdin, w.UID, w.Umask}
	want := []any{1, true, true, 5, 30 * time.Second, syscall.SIGTERM, 30 * time.Second, true, -1, -1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("watcher defaults (-want +got):\n%s", diff)
	}
	s := c.Sockets[0]
	if s.Name != "s" || s.Port != 8080 || s.Backlog != 2048 || s.Family != "AF_INET" || s.Type != "SOCK_STREAM" || s.Umask != -1 {
		t.Errorf("socket = %+v, want Circus's defaults named s", s)
	}
	ci := c.Circus
	gotC := []any{ci.Endpoint, ci.PubsubEndpoint, ci.StatsEndpoint, ci.Statsd, ci.CheckDelay, ci.HttpdHost, ci.HttpdPort, ci.LogLevel, ci.LogOutput, ci.Umask}
	wantC := []any{"tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556", "tcp://127.0.0.1:5557", false, 5 * time.Second, "localhost", 8080, "info", "-", -1}
	if diff := cmp.Diff(wantC, gotC); diff != "" {
		t.Errorf("circus defaults (-want +got):\n%s", diff)
	}
}

func TestSocketOptions(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.ini", []byte(`[socket:unix]
path = /run/a.sock
umask = 022
replace = true
type = sock_dgram
backlog = 10
[socket:v6]
host = ::1
family = af_inet6
so_reuseport = true
blocking = true
proto = tcp
interface = lo
`))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	u, v6 := DefaultSocket("unix"), DefaultSocket("v6")
	u.Path, u.Umask, u.Replace, u.Type, u.Backlog, u.Family = "/run/a.sock", 0o22, true, "SOCK_DGRAM", 10, "AF_UNIX"
	v6.Host, v6.Family, v6.ReusePort, v6.Blocking, v6.Proto, v6.Interface = "::1", "AF_INET6", true, true, "tcp", "lo"
	if diff := cmp.Diff([]any{u, v6}, []any{c.Sockets[0], c.Sockets[1]}); diff != "" {
		t.Errorf("sockets (-want +got):\n%s", diff)
	}
}

func TestFlapping(t *testing.T) {
	t.Parallel()
	type limit struct {
		Attempts        int
		Window, RetryIn time.Duration
		MaxRetry        int
	}
	tests := []struct {
		name string
		ini  string
		want limit
	}{
		{"default", "[watcher:w]\ncmd = w\n", limit{10, 5 * time.Second, 7 * time.Second, 5}},
		{"plugin", "[watcher:w]\ncmd = w\n[plugin:flap]\nuse = circus.plugins.flapping.Flapping\nattempts = 3\nwindow = 1.5\n",
			limit{3, 1500 * time.Millisecond, 7 * time.Second, 5}},
		{"watcher overrides plugin", "[plugin:flap]\nuse = circus.plugins.flapping.Flapping\nattempts = 3\n" +
			"[watcher:w]\ncmd = w\nflapping.attempts = 4\nflapping.retry_in = 2\nflapping.max_retry = -1\n",
			limit{4, time.Second, 2 * time.Second, -1}},
		{"plugin without options: Circus's plugin defaults", "[plugin:flap]\nuse = circus.plugins.flapping.Flapping\n[watcher:w]\ncmd = w\n",
			limit{2, time.Second, 7 * time.Second, 5}},
		{"check_flapping off", "[watcher:w]\ncmd = w\ncheck_flapping = false\n", limit{0, 5 * time.Second, 7 * time.Second, 5}},
		{"plugin inactive", "[plugin:flap]\nuse = circus.plugins.flapping.Flapping\nactive = false\n[watcher:w]\ncmd = w\n",
			limit{0, time.Second, 7 * time.Second, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte(tt.ini))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			w := c.Watchers[0]
			got := limit{w.FlapAttempts, w.FlapWindow, w.FlapRetryIn, w.FlapMaxRetry}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("flapping limit (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIdentity(t *testing.T) {
	t.Parallel()
	root, err := user.Lookup("root")
	if err != nil {
		t.Skipf("no root user here: %v", err)
	}
	groups, _ := root.GroupIds()
	rootGroups := atois(groups)
	// initgroups(the test's own user, 0): 0 and the groups listing it, as
	// getent reads them.
	ownGroups := []int{0}
	if me, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		out, err := exec.Command("getent", "group").Output()
		if err != nil {
			t.Fatalf("getent group: %v", err)
		}
		for line := range strings.Lines(string(out)) {
			f := strings.Split(strings.TrimSpace(line), ":")
			if len(f) == 4 && f[2] != "0" && slices.Contains(strings.Split(f[3], ","), me.Username) {
				ownGroups = append(ownGroups, atois(f[2:3])...)
			}
		}
	}
	tests := []struct {
		name            string
		uid, gid        string
		wantUID, wantGI int
		wantGroups      []int
	}{
		{"name", "root", "", 0, 0, rootGroups},
		// uid 0 is root, not "unset" as in Circus.
		{"zero is root", "0", "", 0, 0, rootGroups},
		{"group by name", "root", "root", 0, 0, rootGroups},
		// The arbiter's user (the test's, root on CI) with that gid.
		{"gid alone", "", "0", -1, 0, ownGroups},
		// No passwd entry, no group database entry: the gid alone.
		{"numeric uid without passwd entry, with gid", "4242420", "4242421", 4242420, 4242421, []int{4242421}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ini := "[watcher:w]\ncmd = w\n"
			if tt.uid != "" {
				ini += "uid = " + tt.uid + "\n"
			}
			if tt.gid != "" {
				ini += "gid = " + tt.gid + "\n"
			}
			c, err := Parse("t.ini", []byte(ini))
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", ini, err)
			}
			w := c.Watchers[0]
			if w.UID != tt.wantUID || w.GID != tt.wantGI || !cmp.Equal(w.Groups, tt.wantGroups, cmpopts.EquateEmpty(), cmpopts.SortSlices(func(a, b int) bool { return a < b })) {
				t.Errorf("Parse(%q) UID, GID, Groups = %d, %d, %v, want %d, %d, %v", ini, w.UID, w.GID, w.Groups, tt.wantUID, tt.wantGI, tt.wantGroups)
			}
		})
	}
	if _, err := user.LookupId("4242420"); err == nil {
		t.Skip("uid 4242420 exists here")
	}
	_, err = Parse("t.ini", []byte("[watcher:w]\ncmd = w\nuid = 4242420\n"))
	checkErrors(t, "Parse(uid without passwd entry)", err, []string{"t.ini:3: [watcher:w] uid: unknown user id 4242420 (no passwd entry): set gid too"})
}

func TestCircusSection(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.ini", []byte(`[circus]
stats_endpoint = tcp://127.0.0.1:6000
statsd = false
umask = 002
warmup_delay = 1.5
httpd = on
httpd_port = 9000
loglevel = DEBUG
include = a.ini b/*.ini
`))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	ci := c.Circus
	got := []any{ci.StatsEndpoint, ci.Statsd, ci.Umask, ci.WarmupDelay, ci.Httpd, ci.HttpdPort, ci.LogLevel, ci.Include, ci.Options["statsd"]}
	want := []any{"tcp://127.0.0.1:6000", true, 0o2, 1500 * time.Millisecond, true, 9000, "debug", []string{"a.ini", "b/*.ini"}, "false"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("circus (-want +got):\n%s", diff)
	}
}

func TestPos(t *testing.T) {
	t.Parallel()
	c, err := Load("testdata/circus/include.ini")
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	tests := []struct {
		section, key string
		want         Position
	}{
		{"circus", "include", Position{"testdata/circus/include.ini", 2}},
		{"watcher:foo", "", Position{"testdata/circus/included-foo.ini", 1}},
		{"Watcher:Foobar", "numprocesses", Position{"testdata/circus/included/foobar.ini", 3}},
		{"circus", "check_delay", Position{"testdata/circus/included/barbaz.ini", 2}},
		{"watcher:nope", "", Position{}},
	}
	for _, tt := range tests {
		t.Run(tt.section+" "+tt.key, func(t *testing.T) {
			t.Parallel()
			if got := c.Pos(tt.section, tt.key); got != tt.want {
				t.Errorf("Pos(%q, %q) = %v, want %v", tt.section, tt.key, got, tt.want)
			}
		})
	}
	wantFiles := []string{"testdata/circus/include.ini", "testdata/circus/included-bar.ini", "testdata/circus/included-foo.ini",
		"testdata/circus/included/barbaz.ini", "testdata/circus/included/foobar.ini"}
	if diff := cmp.Diff(wantFiles, c.Files); diff != "" {
		t.Errorf("Files (-want +got):\n%s", diff)
	}
}
