package config

import (
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestPluginSpecs reads each built-in plugin with Circus's defaults, then
// with every option set.
func TestPluginSpecs(t *testing.T) {
	t.Parallel()
	sd := func(app string) Statsd {
		return Statsd{Host: "localhost", Port: 8125, SampleRate: 1, ApplicationName: app}
	}
	custom := Statsd{Host: "127.0.0.1", Port: 9125, SampleRate: 0.25, ApplicationName: "shop"}
	const statsdOpts = "host = 127.0.0.1\nport = 9125\nsample_rate = 0.25\napplication_name = shop\n"
	tests := []struct {
		name, ini string
		want      PluginSpec
	}{
		{"watchdog defaults", "use = circus.plugins.watchdog.WatchDog\n", &WatchDog{
			LoopRate: time.Minute, WatchersRegex: ".*", MsgRegex: `^(?P<pid>.*);(?P<timestamp>.*)$`,
			MaxCount: 3, IP: "127.0.0.1", Port: 1664}},
		{"watchdog set", "use = circus.plugins.watchdog.WatchDog\nloop_rate = 0.5\nwatchers_regex = web.*\n" +
			"msg_regex = ^(?P<pid>\\d+)$\nmax_count = 5\nip = ::1\nport = 2000\nwatchers_stop_signal = SIGINT\n" +
			"watchers_graceful_timeout = 2.5\n", &WatchDog{
			LoopRate: 500 * time.Millisecond, WatchersRegex: "web.*", MsgRegex: `^(?P<pid>\d+)$`, MaxCount: 5,
			IP: "::1", Port: 2000, StopSignal: syscall.SIGINT, GracefulTimeout: 2500 * time.Millisecond}},
		// Circus takes 0 for "not set" in both.
		{"watchdog zero overrides", "use = circus.plugins.watchdog.WatchDog\nwatchers_stop_signal = 0\n" +
			"watchers_graceful_timeout = 0\n", &WatchDog{
			LoopRate: time.Minute, WatchersRegex: ".*", MsgRegex: `^(?P<pid>.*);(?P<timestamp>.*)$`,
			MaxCount: 3, IP: "127.0.0.1", Port: 1664}},
		{"resource_watcher defaults", "use = circus.plugins.resource_watcher.ResourceWatcher\nwatcher = web\n",
			&ResourceWatcher{Statsd: sd("app"), Watcher: "web", LoopRate: time.Minute,
				MaxCPU: Bound{Set: true, Value: 90}, MaxMem: Bound{Set: true, Value: 90},
				HealthThreshold: 75, MaxCount: 3, ChildSignal: syscall.SIGTERM}},
		{"resource_watcher set", "use = circus.plugins.resource_watcher.ResourceWatcher\nwatcher = web\n" +
			"loop_rate = 2\nmax_cpu = 0\nmin_cpu = 1.5\nmax_mem = 250M\nmin_mem = 1.5 K\nhealth_threshold = 0\n" +
			"max_count = 0\nprocess_children = true\nchild_signal = 9\n" + statsdOpts,
			&ResourceWatcher{Statsd: custom, Watcher: "web", LoopRate: 2 * time.Second,
				MinCPU: Bound{Set: true, Value: 1.5}, MaxMem: Bound{Set: true, Value: 250 << 20, Bytes: true},
				MinMem: Bound{Set: true, Value: 1536, Bytes: true}, ProcessChildren: true, ChildSignal: syscall.SIGKILL}},
		{"resource_watcher percent", "use = circus.plugins.resource_watcher.ResourceWatcher\nwatcher = web\n" +
			"max_mem = 12.5\nmin_mem = 0\n",
			&ResourceWatcher{Statsd: sd("app"), Watcher: "web", LoopRate: time.Minute,
				MaxCPU: Bound{Set: true, Value: 90}, MaxMem: Bound{Set: true, Value: 12.5}, MinMem: Bound{Set: true},
				HealthThreshold: 75, MaxCount: 3, ChildSignal: syscall.SIGTERM}},
		{"resource_watcher service", "use = circus.plugins.resource_watcher.ResourceWatcher\nservice = web\n",
			&ResourceWatcher{Statsd: sd("app"), Watcher: "web", LoopRate: time.Minute,
				MaxCPU: Bound{Set: true, Value: 90}, MaxMem: Bound{Set: true, Value: 90},
				HealthThreshold: 75, MaxCount: 3, ChildSignal: syscall.SIGTERM}},
		{"statsd defaults", "use = circus.plugins.statsd.StatsdEmitter\n", &StatsdEmitter{Statsd: sd("app")}},
		{"statsd old module", "use = circus.plugins._statsd.StatsdEmitter\n" + statsdOpts, &StatsdEmitter{Statsd: custom}},
		{"full_stats defaults", "use = circus.plugins.statsd.FullStats\n", &FullStats{Statsd: sd("app"), LoopRate: time.Minute}},
		{"full_stats set", "use = circus.plugins.statsd.FullStats\nloop_rate = 10\n" + statsdOpts,
			&FullStats{Statsd: custom, LoopRate: 10 * time.Second}},
		{"http_observer defaults", "use = circus.plugins.http_observer.HttpObserver\n", &HTTPObserver{
			Statsd: sd("http_observer"), CheckURL: "http://localhost/", Timeout: 10 * time.Second, LoopRate: time.Minute}},
		{"http_observer set", "use = circus.plugins.http_observer.HttpObserver\ncheck_url = https://x.test:8443/health\n" +
			"timeout = 0.5\nrestart_on_error = web\nloop_rate = 3\n" + statsdOpts, &HTTPObserver{
			Statsd: custom, CheckURL: "https://x.test:8443/health", Timeout: 500 * time.Millisecond,
			RestartOnError: "web", LoopRate: 3 * time.Second}},
		{"command_reloader defaults", "use = circus.plugins.command_reloader.CommandReloader\n", &CommandReloader{LoopRate: time.Second}},
		// Circus's int() refuses a fraction; a fraction is what anyone means.
		{"command_reloader set", "use = circus.plugins.command_reloader.CommandReloader\nloop_rate = 0.25\n",
			&CommandReloader{LoopRate: 250 * time.Millisecond}},
		{"redis_observer defaults", "use = circus.plugins.redis_observer.RedisObserver\n", &RedisObserver{
			Statsd: sd("redis_observer"), RedisURL: "redis://localhost:6379/0", Timeout: 5 * time.Second, LoopRate: time.Minute}},
		{"redis_observer set", "use = circus.plugins.redis_observer.RedisObserver\nredis_url = unix:///run/redis.sock\n" +
			"timeout = 1\nrestart_on_timeout = cache\nloop_rate = 30\n" + statsdOpts, &RedisObserver{
			Statsd: custom, RedisURL: "unix:///run/redis.sock", Timeout: time.Second, RestartOnTimeout: "cache",
			LoopRate: 30 * time.Second}},
		{"inactive", "use = circus.plugins.watchdog.WatchDog\nactive = false\n", nil},
		{"flapping", "use = circus.plugins.flapping.Flapping\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte("[plugin:p]\n"+tt.ini))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			got, err := c.Plugins[0].Spec()
			if err != nil {
				t.Fatalf("Spec() error = %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Spec() (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPluginErrors checks that every bad option is a load error naming its
// line and key.
func TestPluginErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ini string
		want      []string
	}{
		{"no use", "active = true\n", []string{"t.ini:1: [plugin:p] use: missing"}},
		{"python class", "use = myapp.Plugin\n", []string{"t.ini:2: [plugin:p] use: myapp.Plugin is not a plugin Ringmaster has built in"}},
		{"class with the wrong case", "use = circus.plugins.watchdog.Watchdog\n", []string{"t.ini:2: [plugin:p] use: circus.plugins.watchdog.Watchdog is not a plugin Ringmaster has built in; did you mean circus.plugins.watchdog.WatchDog?"}},
		{"active", "use = circus.plugins.watchdog.WatchDog\nactive = sometimes\n", []string{`t.ini:3: [plugin:p] active: "sometimes" is not a boolean`}},
		{"watchdog", "use = circus.plugins.watchdog.WatchDog\nloop_rate = -1\nwatchers_regex = web(\nmsg_regex = (?P<pid>.*\n" +
			"max_count = 0\nip = example.com\nport = 0\nwatchers_stop_signal = SIGNOPE\nwatchers_graceful_timeout = soon\n", []string{
			`t.ini:3: [plugin:p] loop_rate: "-1": must be more than 0 seconds`,
			"t.ini:4: [plugin:p] watchers_regex: error parsing regexp: missing closing )",
			"t.ini:5: [plugin:p] msg_regex: error parsing regexp: missing closing )",
			"t.ini:6: [plugin:p] max_count: 0 is out of range 1..",
			`t.ini:7: [plugin:p] ip: "example.com" is not an IP address`,
			"t.ini:8: [plugin:p] port: 0 is out of range 1..65535",
			`t.ini:9: [plugin:p] watchers_stop_signal: "SIGNOPE" is not a signal`,
			`t.ini:10: [plugin:p] watchers_graceful_timeout: "soon" is not a number of seconds`,
		}},
		{"watchdog Python-only regexp", "use = circus.plugins.watchdog.WatchDog\nmsg_regex = ^(?P<pid>\\d+)(?=;)\n",
			[]string{"t.ini:3: [plugin:p] msg_regex: error parsing regexp: invalid or unsupported Perl syntax: `(?=`"}},
		{"resource_watcher no watcher", "use = circus.plugins.resource_watcher.ResourceWatcher\n",
			[]string{"t.ini:1: [plugin:p] watcher: missing: name the watcher to look after"}},
		{"resource_watcher", "use = circus.plugins.resource_watcher.ResourceWatcher\nwatcher = web\nloop_rate = 0\n" +
			"max_cpu = lots\nmin_cpu = 5M\nmax_mem = 250MB\nmin_mem = -3\nhealth_threshold = -1\nmax_count = -1\n" +
			"process_children = 2\nchild_signal = SIGX\n", []string{
			`t.ini:4: [plugin:p] loop_rate: "0": must be more than 0 seconds`,
			`t.ini:5: [plugin:p] max_cpu: "lots" is not a percent`,
			`t.ini:6: [plugin:p] min_cpu: "5M" is not a percent`,
			`t.ini:7: [plugin:p] max_mem: "250MB" is neither a percent of memory nor a size such as 250M`,
			`t.ini:8: [plugin:p] min_mem: "-3" is not a percent (0 or more)`,
			"t.ini:9: [plugin:p] health_threshold: -1 is negative",
			"t.ini:10: [plugin:p] max_count: -1 is negative",
			`t.ini:11: [plugin:p] process_children: "2" is not a boolean`,
			`t.ini:12: [plugin:p] child_signal: "SIGX" is not a signal`,
		}},
		{"statsd", "use = circus.plugins.statsd.StatsdEmitter\nhost =\nport = 99999\nsample_rate = 0\n", []string{
			"t.ini:3: [plugin:p] host: empty: name the statsd host",
			"t.ini:4: [plugin:p] port: 99999 is out of range 1..65535",
			"t.ini:5: [plugin:p] sample_rate: 0 is out of range",
		}},
		{"statsd rate", "use = circus.plugins.statsd.FullStats\nsample_rate = 1.5\nloop_rate = x\n", []string{
			"t.ini:3: [plugin:p] sample_rate: 1.5 is out of range",
			`t.ini:4: [plugin:p] loop_rate: "x" is not a number of seconds`,
		}},
		{"http_observer", "use = circus.plugins.http_observer.HttpObserver\ncheck_url = localhost:8080/\ntimeout = 0\n", []string{
			`t.ini:3: [plugin:p] check_url: "localhost:8080/": want an http:// or https:// URL with a host`,
			`t.ini:4: [plugin:p] timeout: "0": must be more than 0 seconds`,
		}},
		{"redis_observer", "use = circus.plugins.redis_observer.RedisObserver\nredis_url = rediss://x:6380/0\ntimeout = nan\n", []string{
			`t.ini:3: [plugin:p] redis_url: "rediss://x:6380/0": TLS (rediss://) is not supported`,
			`t.ini:4: [plugin:p] timeout: "nan" is not a number of seconds`,
		}},
		{"command_reloader", "use = circus.plugins.command_reloader.CommandReloader\nloop_rate = 1s\n",
			[]string{`t.ini:3: [plugin:p] loop_rate: "1s" is not a number of seconds`}},
		// Turning it on must not reveal a mistake only then.
		{"inactive is still checked", "use = circus.plugins.watchdog.WatchDog\nactive = false\nport = x\n",
			[]string{`t.ini:4: [plugin:p] port: "x" is not a number`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("t.ini", []byte("[plugin:p]\n"+tt.ini))
			checkErrors(t, "Parse()", err, tt.want)
		})
	}
}

func TestPluginWarnings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, ini string
		want      []string
	}{
		{"typo", "use = circus.plugins.watchdog.WatchDog\nloop_rat = 1\n",
			[]string{"t.ini:3: [plugin:p] loop_rat: unknown key; did you mean loop_rate?"}},
		{"unknown", "use = circus.plugins.statsd.StatsdEmitter\nflavour = x\n",
			[]string{"t.ini:3: [plugin:p] flavour: unknown key, ignored"}},
		{"watcher option", "use = circus.plugins.statsd.StatsdEmitter\nnumprocesses = 2\n",
			[]string{"t.ini:3: [plugin:p] numprocesses: ignored: Circus runs a plugin as a watcher"}},
		{"wide watchdog", "use = circus.plugins.watchdog.WatchDog\nip = 0.0.0.0\n",
			[]string{"t.ini:3: [plugin:p] ip: 0.0.0.0 is not a loopback address: anyone who can reach it can send heartbeats"}},
		{"service", "use = circus.plugins.resource_watcher.ResourceWatcher\nservice = web\n",
			[]string{"t.ini:3: [plugin:p] service: deprecated: use watcher = web"}},
		{"inactive python class", "use = my.Plugin\nactive = no\n",
			[]string{"t.ini:2: [plugin:p] use: my.Plugin is not a plugin Ringmaster has built in; ignored since active = false"}},
		{"clean", "use = circus.plugins.watchdog.WatchDog\nip = localhost\nactive = true\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte("[plugin:p]\n"+tt.ini))
			if err != nil {
				t.Fatalf("Parse() error = %v", err)
			}
			var got []string
			for _, w := range c.Warnings {
				got = append(got, w.Error())
			}
			checkMessages(t, "Parse().Warnings", got, tt.want)
		})
	}
}

// A Plugin not from Load is checked by Spec as Load checks a file.
func TestPluginSpecOfHandMade(t *testing.T) {
	t.Parallel()
	p := &Plugin{Name: "wd", Use: WatchDogPlugin, Options: map[string]string{"port": "http", "max_count": "2"}}
	_, err := p.Spec()
	checkErrors(t, "Spec()", err, []string{`[plugin:wd] port: "http" is not a number`})
	p = &Plugin{Name: "x", Use: "x.Y"}
	_, err = p.Spec()
	checkErrors(t, "Spec()", err, []string{`[plugin:x] use: "x.Y" is not a plugin Ringmaster has built in`})
	p.Use = "circus.plugins.statsd.StatsEmitter"
	_, err = p.Spec()
	checkErrors(t, "Spec()", err, []string{`use: "circus.plugins.statsd.StatsEmitter" is not a plugin Ringmaster has built in; did you mean "circus.plugins.statsd.StatsdEmitter"?`})
	p = &Plugin{Name: "x", Use: "x.Y", Options: map[string]string{"active": "false"}}
	if s, err := p.Spec(); s != nil || err != nil {
		t.Errorf("Spec() of an inactive unknown class = %v, %v, want nil, nil", s, err)
	}
}

func TestHumanBytes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int64
	}{
		{"250M", 250 << 20}, {"1.34M", 1405091}, {"512B", 512}, {"3k", 3072}, {"3K", 3072}, {"2 G", 2 << 30},
		{"1Ki", 1024}, {"1Mi", 1 << 20}, {"2mega", 2 << 20}, {"1kibi", 1024}, {"7byte", 7}, {".5K", 512},
		{"2T", 2 << 40},
	}
	for _, tt := range tests {
		if got, err := HumanBytes(tt.in); err != nil || got != tt.want {
			t.Errorf("HumanBytes(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "M", "250", "250MB", "250m", "-1M", "1.2.3M", "9Y9", "99999999999999Y", "N/A"} {
		if got, err := HumanBytes(bad); err == nil {
			t.Errorf("HumanBytes(%q) = %d, want an error", bad, got)
		}
	}
}

func TestParseRedisURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want RedisAddr
	}{
		{"redis://localhost:6379/0", RedisAddr{Network: "tcp", Address: "localhost:6379"}},
		{"redis://cache", RedisAddr{Network: "tcp", Address: "cache:6379"}},
		{"redis://:s3cret@[::1]:7000/2", RedisAddr{Network: "tcp", Address: "[::1]:7000", Password: "s3cret"}},
		{"redis://ops:s3cret@h:1", RedisAddr{Network: "tcp", Address: "h:1", Username: "ops", Password: "s3cret"}},
		{"unix:///run/redis.sock?db=1", RedisAddr{Network: "unix", Address: "/run/redis.sock"}},
	}
	for _, tt := range tests {
		got, err := ParseRedisURL(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseRedisURL(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "http://x/", "redis://", "redis://h:0", "redis://h:x", "unix://", "rediss://h", "::"} {
		if got, err := ParseRedisURL(bad); err == nil {
			t.Errorf("ParseRedisURL(%q) = %+v, want an error", bad, got)
		}
	}
}

// FuzzPluginSpec checks that a plugin section that loads without error
// also reads without error through Spec (the plugins package relies on
// it), and that neither panics.
func FuzzPluginSpec(f *testing.F) {
	for _, use := range builtinClasses() {
		f.Add(use, "loop_rate", "0.5", "port", "1664")
	}
	f.Add(ResourceWatcherPlugin, "watcher", "web", "max_mem", "1.5G")
	f.Add(WatchDogPlugin, "msg_regex", `^(?P<pid>\d+)$`, "ip", "::1")
	f.Add(RedisObserverPlugin, "redis_url", "redis://:x@h:1/0", "active", "no")
	f.Fuzz(func(t *testing.T, use, k1, v1, k2, v2 string) {
		ini := "[plugin:p]\nuse = " + use + "\n" + k1 + " = " + v1 + "\n" + k2 + " = " + v2 + "\n"
		c, err := Parse("fuzz.ini", []byte(ini))
		if err != nil || len(c.Plugins) != 1 {
			return
		}
		if _, err := c.Plugins[0].Spec(); err != nil {
			t.Fatalf("Parse(%q) succeeded, but Spec() = %v", ini, err)
		}
	})
}
