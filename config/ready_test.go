package config

import (
	"strings"
	"testing"
	"time"
)

func TestReadyAndLimits(t *testing.T) {
	t.Parallel()
	c, err := Parse("r.ini", []byte(`[watcher:api]
cmd = api
ready = Notify
ready_timeout = 5
watchdog_sec = 2.5
limit.max_rss = 300M
limit.max_cpu = 90%
limit.grace = 3
limit.interval = 0.5

[watcher:web]
cmd = web
health.tcp = 127.0.0.1:8080
ready = health

[watcher:slow]
cmd = slow
warmup_delay = 1
ready = warmup

[watcher:plain]
cmd = plain
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		ready  Ready
		limits Limits
	}{
		{Ready{ReadyNotify, 5 * time.Second, 2500 * time.Millisecond}, Limits{300 << 20, 90, 3 * time.Second, 500 * time.Millisecond}},
		{Ready{ReadyHealth, time.Minute, 0}, defaultLimits()},
		{Ready{ReadyWarmup, time.Minute, 0}, defaultLimits()},
		{defaultReady(), defaultLimits()},
	}
	for i, w := range c.Watchers {
		if w.Ready != want[i].ready || w.Limits != want[i].limits {
			t.Errorf("%s: Ready = %+v, Limits = %+v; want %+v, %+v", w.Name, w.Ready, w.Limits, want[i].ready, want[i].limits)
		}
		if got := w.Ready.Waits(); got != (i < 3) {
			t.Errorf("%s: Waits = %v", w.Name, got)
		}
		if got := w.Limits.Enabled(); got != (i == 0) {
			t.Errorf("%s: Limits.Enabled = %v", w.Name, got)
		}
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestReadyErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ body, want string }{
		{"ready = soon", `r.ini:3: [watcher:w] ready: "soon": want spawn, warmup, notify or health`},
		{"ready = health", "r.ini:3: [watcher:w] ready: ready = health needs a health check"},
		{"ready = warmup", "r.ini:3: [watcher:w] ready: ready = warmup needs warmup_delay"},
		{"watchdog_sec = 3", "r.ini:3: [watcher:w] watchdog_sec: needs ready = notify"},
		{"ready = notify\nready_timeout = 0", "r.ini:4: [watcher:w] ready_timeout: must be more than 0"},
		{"limit.max_rss = lots", `r.ini:3: [watcher:w] limit.max_rss: "lots" is not a size in bytes`},
		{"limit.max_cpu = -5", `r.ini:3: [watcher:w] limit.max_cpu: "-5" is not a percentage of a core`},
		{"limit.max_cpu = 50\nlimit.interval = 0", "r.ini:4: [watcher:w] limit.interval: must be more than 0"},
	} {
		_, err := Parse("r.ini", []byte("[watcher:w]\ncmd = w\n"+tt.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.body, err, tt.want)
		}
	}
}
