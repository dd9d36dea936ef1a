package config

import (
	"strings"
	"testing"
	"time"
)

func TestHealth(t *testing.T) {
	t.Parallel()
	c, err := Parse("h.ini", []byte(`[socket:web]
port = 0

[watcher:web]
cmd = web --fd $(circus.sockets.web)
health.url = http://127.0.0.1:$(circus.sockets.web.port)/healthz?wid=$(circus.wid)
health.body = ok
health.interval = 0.5
health.timeout = 0.25
health.failures = 2

[watcher:db]
cmd = db
health.tcp = [::1]:$(circus.wid)

[watcher:plain]
cmd = plain
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Health{
		{URL: "http://127.0.0.1:$(circus.sockets.web.port)/healthz?wid=$(circus.wid)", Body: "ok", Interval: 500 * time.Millisecond, Timeout: 250 * time.Millisecond, Failures: 2},
		{TCP: "[::1]:$(circus.wid)", Interval: 5 * time.Second, Timeout: 2 * time.Second, Failures: 3},
		{Interval: 5 * time.Second, Timeout: 2 * time.Second, Failures: 3},
	}
	for i, w := range c.Watchers {
		if w.Health != want[i] {
			t.Errorf("%s: Health = %+v, want %+v", w.Name, w.Health, want[i])
		}
		if got := w.Health.Enabled(); got != (i < 2) {
			t.Errorf("%s: Enabled = %v", w.Name, got)
		}
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
}

func TestHealthSharedSocketWarning(t *testing.T) {
	t.Parallel()
	c, err := Parse("h.ini", []byte(`[socket:web]
port = 0

[watcher:web]
cmd = web --fd $(circus.sockets.web)
numprocesses = 4
health.url = http://127.0.0.1:$(circus.sockets.web.port)/
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "h.ini:7: [watcher:web] health.url: checks a socket all 4 workers share") {
		t.Fatalf("warnings = %v", c.Warnings)
	}
}
