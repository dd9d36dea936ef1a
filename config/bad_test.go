package config

import (
	"path/filepath"
	"testing"
)

// TestBadConfigs loads each file of testdata/bad and checks that every
// problem comes back as one error naming file, line, section and key.
func TestBadConfigs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string
	}{
		{"missing_cmd.ini", []string{"missing_cmd.ini:1: [watcher:api] cmd: missing"}},
		{"empty_cmd.ini", []string{"empty_cmd.ini:2: [watcher:api] cmd: empty"}},
		{"unknown_socket_ref.ini", []string{"unknown_socket_ref.ini:2: [watcher:web] cmd: $(circus.sockets.nope) refers to [socket:nope], which is not defined"}},
		{"numprocesses_nan.ini", []string{`numprocesses_nan.ini:3: [watcher:api] numprocesses: "ten" is not a number`}},
		{"numprocesses_negative.ini", []string{"numprocesses_negative.ini:3: [watcher:api] numprocesses: -2 is negative"}},
		{"bad_float.ini", []string{`bad_float.ini:3: [watcher:api] graceful_timeout: "2.5s" is not a number of seconds`}},
		{"bad_bool.ini", []string{`bad_bool.ini:3: [watcher:api] autostart: "maybe" is not a boolean`}},
		{"bad_signal.ini", []string{`bad_signal.ini:3: [watcher:api] stop_signal: "SIGFOO" is not a signal`}},
		{"bad_family.ini", []string{`bad_family.ini:3: [socket:web] family: "AF_IPX" is not a socket family`}},
		{"port_range.ini", []string{"port_range.ini:2: [socket:web] port: 70000 is out of range 0..65535"}},
		{"unknown_user.ini", []string{`unknown_user.ini:3: [watcher:api] uid: unknown user "no-such-user-ringmaster"`}},
		{"unknown_group.ini", []string{`unknown_group.ini:3: [watcher:api] gid: unknown group "no-such-group-ringmaster"`}},
		{"duplicate_watcher_case.ini", []string{"duplicate_watcher_case.ini:4: [watcher:Web] watcher name clashes with [watcher:web] at testdata/bad/duplicate_watcher_case.ini:1"}},
		{"include_missing.ini", []string{"include_missing.ini:2: [circus] include: testdata/bad/does-not-exist.ini does not exist"}},
		{"include_unreadable.ini", []string{"include_unreadable.ini:2: [circus] include: cannot read testdata/bad/adir.ini: is a directory"}},
		{"singleton.ini", []string{"singleton.ini:4: [watcher:api] numprocesses: 2 with singleton = true"}},
		{"unknown_rlimit.ini", []string{`unknown_rlimit.ini:3: [watcher:api] rlimit_bananas: unknown resource limit "bananas"`}},
		{"bad_umask.ini", []string{`bad_umask.ini:3: [watcher:api] umask: "089" is not an octal umask`}},
		{"bad_socket_umask.ini", []string{`bad_socket_umask.ini:3: [socket:web] umask: "1777" is not an octal umask`}},
		{"copy_path.ini", []string{"copy_path.ini:3: [watcher:api] copy_path: needs copy_env = true"}},
		{"virtualenv.ini", []string{"virtualenv.ini:3: [watcher:api] virtualenv: needs copy_env = true"}},
		{"stdin_socket.ini", []string{"stdin_socket.ini:3: [watcher:inetd] stdin_socket: [socket:nope] is not defined"}},
		{"nice_range.ini", []string{"nice_range.ini:3: [watcher:api] nice: 40 is out of range -20..19"}},
		{"no_section.ini", []string{`no_section.ini:1: "cmd = api" is outside any [section]`}},
		{"httpd_wide.ini", []string{`httpd_wide.ini:3: [circus] httpd_host: the console would listen on "0.0.0.0", beyond this machine, without authentication`}},
		{"httpd_auth.ini", []string{`httpd_auth.ini:3: [circus] httpd_auth: want USER:PASSWORD`}},
		{"health_url.ini", []string{`health_url.ini:3: [watcher:web] health.url: "ftp://127.0.0.1/": want an http:// or https:// URL`}},
		{"health_tcp.ini", []string{`health_tcp.ini:3: [watcher:web] health.tcp: "127.0.0.1": want host:port`}},
		{"health_body.ini", []string{`health_body.ini:3: [watcher:web] health.body: needs health.url`}},
		{"plugin_python.ini", []string{"plugin_python.ini:5: [plugin:mine] use: myapp.plugins.Mine is not a plugin Ringmaster has built in (it runs no Python)"}},
		{"plugin_options.ini", []string{
			`plugin_options.ini:6: [plugin:wd] loop_rate: "0": must be more than 0 seconds`,
			`plugin_options.ini:7: [plugin:wd] msg_regex: "^(.*);" has no group (?P<pid>...)`,
		}},
		{"bad_loglevel.ini", []string{`bad_loglevel.ini:2: [circus] loglevel: "chatty" is not a log level`}},
		{"bad_logoutput.ini", []string{
			`bad_logoutput.ini:3: [circus] logoutput: "syslog://localhost?local9": unknown syslog facility "local9"`,
			`bad_logoutput.ini:2: [circus] logformat: "yaml" is not a log format (text or json)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join("testdata", "bad", tt.file)
			_, err := Load(path)
			checkErrors(t, "Load("+path+")", err, tt.want)
		})
	}
}

// TestWarnings checks the problems that do not stop a load.
func TestWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ini  string
		want []string
	}{
		{"watcher typo", "[watcher:api]\ncmd = api\nnumprocess = 2\n",
			[]string{"t.ini:3: [watcher:api] numprocess: unknown key, kept as a free-form option; did you mean numprocesses?"}},
		{"watcher free-form key", "[watcher:api]\ncmd = api\nservice_url = http://x\n", nil},
		{"circus typo", "[circus]\ncheck_dealy = 3\n",
			[]string{"t.ini:2: [circus] check_dealy: unknown key; did you mean check_delay?"}},
		{"circus unknown", "[circus]\nflavour = vanilla\n",
			[]string{"t.ini:2: [circus] flavour: unknown key, ignored"}},
		{"socket typo", "[socket:web]\nbacklogg = 5\n",
			[]string{"t.ini:2: [socket:web] backlogg: unknown key; did you mean backlog?"}},
		{"repeated section", "[watcher:api]\ncmd = one\n[watcher:api]\ncmd = two\nnumprocesses = 3\n", []string{
			"t.ini:4: [watcher:api] cmd: repeated key ignored: the first value (line 2) wins",
			"t.ini:3: [watcher:api] repeated section merged into the one at t.ini:1",
		}},
		{"python plugin, inactive", "[plugin:mine]\nuse = my.Plugin\nactive = false\n",
			[]string{"t.ini:2: [plugin:mine] use: my.Plugin is not a plugin Ringmaster has built in; ignored since active = false"}},
		{"builtin plugin", "[plugin:rw]\nuse = circus.plugins.resource_watcher.ResourceWatcher\nwatcher = api\n", nil},
		{"unknown section", "[watchers:api]\ncmd = x\n",
			[]string{"t.ini:1: [watchers:api] unknown section, ignored; did you mean [watcher...]?"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte(tt.ini))
			if err != nil {
				t.Fatalf("Parse() error = %v, want none", err)
			}
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.Error())
			}
			checkMessages(t, "Parse().Warnings", got, tt.want)
		})
	}
}

func TestHttpdWideWithAuth(t *testing.T) {
	t.Parallel()
	cfg, err := Load(filepath.Join("testdata", "httpd_auth_ok.ini"))
	if err != nil {
		t.Fatal(err)
	}
	if c := cfg.Circus; !c.Httpd || c.HttpdHost != "::" || c.HttpdAuth != "ops:s3cret" {
		t.Fatalf("httpd = %v, host %q, auth %q", c.Httpd, c.HttpdHost, c.HttpdAuth)
	}
	for host, want := range map[string]bool{"localhost": true, "LOCALHOST": true, "127.0.0.1": true, "127.9.9.9": true, "::1": true, "[::1]": true,
		"": false, "0.0.0.0": false, "::": false, "10.0.0.1": false, "example.com": false, "localhost.example.com": false} {
		if got := IsLoopbackHost(host); got != want {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}
