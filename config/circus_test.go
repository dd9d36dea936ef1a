package config

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// circusDir holds Circus 0.19.0's own test configs (see its README.md).
const circusDir = "testdata/circus"

// TestCircusConfigs loads every one of Circus's test configs. Each loads, or
// fails only with file:line reasons where Ringmaster decides to refuse what
// Circus would refuse later (or run wrongly): wantErrs lists them.
func TestCircusConfigs(t *testing.T) {
	// What Circus's test_variables_everywhere and test_issue567 set.
	t.Setenv("circus_stats_endpoint", "tcp://0.0.0.0:9876")
	t.Setenv("circus_statsd", "True")
	t.Setenv("circus_uid", "ubuntu")
	t.Setenv("circus_gid", "ubuntu")
	t.Setenv("GRAVITY", "down")
	for _, name := range []string{"me", "tarek"} {
		if _, err := user.Lookup(name); err == nil {
			t.Skipf("user %q exists here; issue137/issue442 expect it not to", name)
		}
	}

	tests := []struct {
		file      string
		wantErrs  []string // substrings, one per error, in order
		wantWarns []string
		check     func(t *testing.T, c *Config)
	}{
		{file: "circus.ini", check: func(t *testing.T, c *Config) {
			got := []string{c.Circus.Pidfile, c.Circus.LogOutput, c.Circus.LogLevel}
			if diff := cmp.Diff([]string{"pidfile", "logoutput", "debug"}, got); diff != "" {
				t.Errorf("pidfile, logoutput, loglevel (-want +got):\n%s", diff)
			}
		}},
		{file: "copy_env.ini", check: func(t *testing.T, c *Config) {
			w1, w2 := watcher(t, c, "watcher1"), watcher(t, c, "watcher2")
			if w1.CopyEnv || !w2.CopyEnv {
				t.Errorf("CopyEnv = %v, %v, want false, true", w1.CopyEnv, w2.CopyEnv)
			}
			for _, w := range []*Watcher{w1, w2} {
				if w.Env["TEST1"] != "test1" {
					t.Errorf("%s Env[TEST1] = %q, want test1", w.Name, w.Env["TEST1"])
				}
			}
		}},
		{file: "empty_include.ini", wantWarns: []string{
			`empty_include.ini:2: [circus] include: "garbage*.ini" matches no file`,
			`empty_include.ini:3: [circus] include_dir: "empty/*.ini" matches no file`,
		}},
		{file: "empty_section.ini", check: func(t *testing.T, c *Config) {
			if len(c.Sockets) != 0 || len(c.Plugins) != 0 {
				t.Errorf("Sockets, Plugins = %v, %v, want none (empty sections are skipped)", c.Sockets, c.Plugins)
			}
		}},
		// A Python class of the user's own cannot run here: refused, where
		// Circus would fail to import it when it starts.
		{file: "env_everywhere.ini",
			wantErrs: []string{"env_everywhere.ini:8: [plugin:breaking] use: bad.has.been.broken is not a plugin Ringmaster has built in"},
			check: func(t *testing.T, c *Config) {
				got := []string{c.Circus.Endpoint, c.Sockets[0].Path, c.Plugins[0].Use}
				want := []string{"tcp://127.0.0.1:1234", "/var/run/broken.sock", "bad.has.been.broken"}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("endpoint, socket path, plugin use (-want +got):\n%s", diff)
				}
			}},
		{file: "env_section.ini", check: func(t *testing.T, c *Config) {
			path := os.Getenv("PATH") + ":/bin"
			want1 := map[string]string{"CAKE": "lie", "PATH": path, "TEST1": "test1", "TEST2": "test2", "TEST3": "test3"}
			want2 := map[string]string{"LIE": "cake", "PATH": path, "TEST1": "test1", "TEST2": "test2", "TEST3": "test3"}
			if diff := cmp.Diff(want1, watcher(t, c, "watcher1").Env); diff != "" {
				t.Errorf("watcher1 Env (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want2, watcher(t, c, "watcher2").Env); diff != "" {
				t.Errorf("watcher2 Env (-want +got):\n%s", diff)
			}
		}},
		{file: "env_sensecase.ini", check: func(t *testing.T, c *Config) {
			want := map[string]string{"http_proxy": "http://localhost:8080", "HTTPS_PROXY": "http://localhost:8043", "FunKy_soUl": "scorpio"}
			if diff := cmp.Diff(want, watcher(t, c, "webapp").Env); diff != "" {
				t.Errorf("webapp Env (-want +got):\n%s", diff)
			}
		}},
		{file: "env_var.ini", check: func(t *testing.T, c *Config) {
			if got, want := watcher(t, c, "my_app").Env["PATH"], os.Getenv("PATH")+":/bin"; got != want {
				t.Errorf("Env[PATH] = %q, want %q", got, want)
			}
		}},
		{file: "expand_vars.ini", check: func(t *testing.T, c *Config) {
			want := map[string]string{"class": "FileStream", "filename": "/tmp/echo.log", "max_bytes": "10485760"}
			if diff := cmp.Diff(want, watcher(t, c, "echo").StdoutStream); diff != "" {
				t.Errorf("StdoutStream (-want +got):\n%s", diff)
			}
		}},
		// Circus accepts a watcher without cmd until it starts it.
		{file: "find_hook_in_pythonpath.ini",
			wantErrs:  []string{"find_hook_in_pythonpath.ini:1: [watcher:foo] cmd: missing"},
			wantWarns: []string{`find_hook_in_pythonpath.ini:3: [watcher:foo] hooks.before_start: "hooks.my_hook.hook" is a Python hook`}},
		{file: "hooks.ini",
			wantErrs:  []string{"hooks.ini:1: [watcher:foo] cmd: missing"},
			wantWarns: []string{`hooks.ini:3: [watcher:foo] hooks.before_start: "tests.test_config.hook" is a Python hook`},
			check: func(t *testing.T, c *Config) {
				want := map[string]Hook{"before_start": {Command: "tests.test_config.hook", Python: true, Timeout: 30 * time.Second}}
				if diff := cmp.Diff(want, watcher(t, c, "foo").Hooks); diff != "" {
					t.Errorf("Hooks (-want +got):\n%s", diff)
				}
			}},
		{file: "include.ini", check: func(t *testing.T, c *Config) {
			if diff := cmp.Diff([]string{"bar", "foo", "barbaz", "foobar"}, names(c)); diff != "" {
				t.Errorf("watchers (-want +got):\n%s", diff)
			}
			if c.Circus.CheckDelay != 2*time.Second {
				t.Errorf("CheckDelay = %v, want 2s (from included/barbaz.ini)", c.Circus.CheckDelay)
			}
		}},
		{file: "include_dir.ini", check: func(t *testing.T, c *Config) {
			if diff := cmp.Diff([]string{"bar", "foo"}, names(c)); diff != "" {
				t.Errorf("watchers (-want +got):\n%s", diff)
			}
		}},
		{file: "included-bar.ini"},
		{file: "included-foo.ini"},
		{file: "issue1088.ini", check: func(t *testing.T, c *Config) {
			if got := watcher(t, c, "my_app").GracefulTimeout; got != 25500*time.Millisecond {
				t.Errorf("GracefulTimeout = %v, want 25.5s", got)
			}
		}},
		{file: "issue137.ini", wantErrs: []string{
			`issue137.ini:10: [watcher:my_app] uid: unknown user "me"`,
			`issue137.ini:11: [watcher:my_app] gid: unknown group "me"`,
		}, check: func(t *testing.T, c *Config) {
			if got := watcher(t, c, "my_app").User; got != "me" {
				t.Errorf("User = %q, want me", got)
			}
		}},
		{file: "issue210.ini"},
		{file: "issue310.ini", check: func(t *testing.T, c *Config) {
			w := watcher(t, c, "web")
			if w.Args != "--fd $(circus.sockets.web)" {
				t.Errorf("Args = %q, want the reference kept for spawn time", w.Args)
			}
			if diff := cmp.Diff([]string{"web"}, w.SocketRefs()); diff != "" {
				t.Errorf("SocketRefs() (-want +got):\n%s", diff)
			}
		}},
		// Circus would pass "$(circus.sockets.web)" to the program verbatim.
		{file: "issue395.ini",
			wantErrs: []string{"issue395.ini:10: [watcher:web] args: $(circus.sockets.web) refers to [socket:web], which is not defined"},
			check: func(t *testing.T, c *Config) {
				if got := watcher(t, c, "web").GracefulTimeout; got != 88*time.Second {
					t.Errorf("GracefulTimeout = %v, want 88s", got)
				}
			}},
		// [env] sets circus_uid = tarek over the environment's ubuntu.
		{file: "issue442.ini",
			wantErrs: []string{`issue442.ini:10: [watcher:my_app] uid: unknown user "tarek"`},
			check: func(t *testing.T, c *Config) {
				w := watcher(t, c, "my_app")
				got := []string{c.Circus.StatsEndpoint, w.User, w.Group}
				if diff := cmp.Diff([]string{"tcp://0.0.0.0:9876", "tarek", "root"}, got); diff != "" {
					t.Errorf("stats_endpoint, uid, gid (-want +got):\n%s", diff)
				}
				if !c.Circus.Statsd {
					t.Errorf("Statsd = false, want true")
				}
			}},
		{file: "issue53.ini", check: func(t *testing.T, c *Config) {
			w := watcher(t, c, "test")
			if w.Args != "-q  # invalid option, makes bash exit non-zero" || w.NumProcesses != 100 {
				t.Errorf("Args, NumProcesses = %q, %d, want the '#' kept and 100", w.Args, w.NumProcesses)
			}
		}},
		{file: "issue546.ini", check: func(t *testing.T, c *Config) {
			w := watcher(t, c, "test")
			got := Expand(w.Cmd, func(k string) (string, bool) { return "3", k == "sockets.some-socket" })
			if got != "../bin/chaussette --fd 3" {
				t.Errorf("Expand(cmd) = %q, want ../bin/chaussette --fd 3", got)
			}
		}},
		{file: "issue567.ini", check: func(t *testing.T, c *Config) {
			if got := watcher(t, c, "watcher1").Cmd; got != "down" {
				t.Errorf("Cmd = %q, want down (from $GRAVITY)", got)
			}
		}},
		{file: "issue594.ini", check: func(t *testing.T, c *Config) {
			w := watcher(t, c, "my_app")
			if w.StopSignal != syscall.SIGINT || !w.StopChildren {
				t.Errorf("StopSignal, StopChildren = %v, %v, want interrupt, true", w.StopSignal, w.StopChildren)
			}
		}},
		{file: "issue651.ini", check: func(t *testing.T, c *Config) {
			if c.Circus.CheckDelay != 10500*time.Millisecond {
				t.Errorf("CheckDelay = %v, want 10.5s", c.Circus.CheckDelay)
			}
		}},
		{file: "issue665.ini", check: func(t *testing.T, c *Config) {
			type shell struct {
				Cmd, Args, ShellArgs string
				Shell                bool
			}
			var got []shell
			for _, w := range c.Watchers {
				got = append(got, shell{w.Cmd, w.Args, w.ShellArgs, w.Shell})
			}
			want := []shell{{"foo", "--fd", "", true}, {"foo", "--fd", "bar baz qux", true}, {"foo", "--fd", "bar baz qux", false}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("watchers (-want +got):\n%s", diff)
			}
		}},
		{file: "issue680.ini",
			wantWarns: []string{"issue680.ini:17: [plugin:myplugin] priority: ignored: Circus runs a plugin as a watcher"},
			check: func(t *testing.T, c *Config) {
				got := []int{watcher(t, c, "test1").Priority, watcher(t, c, "test2").Priority}
				if diff := cmp.Diff([]int{10, 20}, got); diff != "" {
					t.Errorf("priorities (-want +got):\n%s", diff)
				}
				if c.Plugins[0].Options["priority"] != "30" || c.Circus.CheckDelay != -time.Second {
					t.Errorf("plugin priority, check_delay = %q, %v, want 30, -1s", c.Plugins[0].Options["priority"], c.Circus.CheckDelay)
				}
			}},
		{file: "multiple_wildcard.ini", check: func(t *testing.T, c *Config) {
			if diff := cmp.Diff([]string{"server", "barbaz", "foobar"}, names(c)); diff != "" {
				t.Errorf("watchers (-want +got):\n%s", diff)
			}
			if got := watcher(t, c, "server").Env["INI"]; got != "private.ini" {
				t.Errorf("server Env[INI] = %q, want private.ini (the main file wins)", got)
			}
			if c.Circus.CheckDelay != 555*time.Second {
				t.Errorf("CheckDelay = %v, want 555s", c.Circus.CheckDelay)
			}
		}},
		{file: "reload_addplugins.ini"},
		{file: "reload_addsockets.ini"},
		{file: "reload_addwatchers.ini"},
		{file: "reload_base.ini", check: func(t *testing.T, c *Config) {
			want := DefaultSocket("mysocket")
			want.Port = 8888
			if diff := cmp.Diff(want, c.Sockets[0]); diff != "" {
				t.Errorf("socket (-want +got):\n%s", diff)
			}
		}},
		{file: "reload_changearbiter.ini"},
		{file: "reload_changeplugins.ini",
			wantWarns: []string{"reload_changeplugins.ini:18: [plugin:myplugin] service: deprecated: use watcher = test1"}},
		{file: "reload_changesockets.ini"},
		{file: "reload_changewatchers.ini"},
		{file: "reload_delplugins.ini"},
		{file: "reload_delsockets.ini"},
		{file: "reload_delwatchers.ini"},
		{file: "reload_numprocesses.ini"},
		{file: "reload_statsd.ini"},
		{file: "reuseport.ini", check: func(t *testing.T, c *Config) {
			got := map[string]bool{}
			for _, s := range c.Sockets {
				got[s.Name] = s.ReusePort
			}
			if diff := cmp.Diff(map[string]bool{"reuseport": true, "noreuseport": false}, got); diff != "" {
				t.Errorf("ReusePort by socket (-want +got):\n%s", diff)
			}
		}},
		{file: "test_web.ini"},
		// Circus refuses it when it creates the watcher.
		{file: "virtualenv.ini",
			wantErrs: []string{"virtualenv.ini:5: [watcher:test] virtualenv: needs copy_env = true"},
			check: func(t *testing.T, c *Config) {
				w := watcher(t, c, "test")
				if w.Virtualenv != "/tmp/.virtualenvs/test" || w.VirtualenvPyVer != "3.3" {
					t.Errorf("Virtualenv, VirtualenvPyVer = %q, %q", w.Virtualenv, w.VirtualenvPyVer)
				}
			}},
	}

	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(circusDir, tt.file)
			c, err := Load(path)
			checkErrors(t, "Load("+path+")", err, tt.wantErrs)
			var warns []string
			for _, w := range c.Warnings {
				warns = append(warns, w.Error())
			}
			checkMessages(t, "Load("+path+").Warnings", warns, tt.wantWarns)
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
	all, _ := filepath.Glob(filepath.Join(circusDir, "*.ini"))
	for _, f := range all {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no case in TestCircusConfigs", f)
		}
	}
}

// checkErrors checks that err joins one *Error per want, each containing
// its want, in order.
func checkErrors(t *testing.T, call string, err error, want []string) {
	t.Helper()
	var got []string
	if err != nil {
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Errorf("%s: error %v is not a *config.Error", call, e)
			}
			got = append(got, e.Error())
		}
	}
	checkMessages(t, call+" error", got, want)
}

func checkMessages(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %q, want %d messages like %q", what, got, len(want), want)
		return
	}
	for i := range got {
		if !strings.Contains(got[i], want[i]) {
			t.Errorf("%s[%d] = %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}

func watcher(t *testing.T, c *Config, name string) *Watcher {
	t.Helper()
	for _, w := range c.Watchers {
		if w.Name == name {
			return w
		}
	}
	t.Fatalf("no watcher %q in %v", name, names(c))
	return nil
}

func names(c *Config) []string {
	var out []string
	for _, w := range c.Watchers {
		out = append(out, w.Name)
	}
	return out
}
