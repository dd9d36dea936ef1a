package config

import (
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

func TestAutoscale(t *testing.T) {
	t.Parallel()
	c, err := Parse("a.ini", []byte(`[socket:web]
port = 0

[socket:api]
path = /run/api.sock

[watcher:web]
cmd = web --fd $(circus.sockets.web)
numprocesses = 2
autoscale.min = 0
autoscale.max = 16
autoscale.idle = 30
autoscale.down_interval = 0.5
autoscale.up_after = 0.25
autoscale.queue_per_worker = 4

[watcher:api]
cmd = api
use_sockets = true
autoscale.max = 8

[watcher:plain]
cmd = plain --fd $(circus.sockets.web)
`))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		a Autoscale
		n int
	}{
		{Autoscale{Min: 0, Max: 16, Idle: 30 * time.Second, DownInterval: 500 * time.Millisecond, UpAfter: 250 * time.Millisecond, QueuePerWorker: 4}, 2},
		{Autoscale{Min: 1, Max: 8, Idle: 30 * time.Second, DownInterval: time.Second, UpAfter: 100 * time.Millisecond, QueuePerWorker: 1}, 1},
		{Autoscale{Min: 1, Max: 0, Idle: 30 * time.Second, DownInterval: time.Second, UpAfter: 100 * time.Millisecond, QueuePerWorker: 1}, 1},
	}
	for i, w := range c.Watchers {
		if w.Autoscale != want[i].a || w.NumProcesses != want[i].n {
			t.Errorf("%s: Autoscale, NumProcesses = %+v, %d, want %+v, %d", w.Name, w.Autoscale, w.NumProcesses, want[i].a, want[i].n)
		}
		if got := w.Autoscale.Enabled(); got != (i < 2) {
			t.Errorf("%s: Enabled() = %v", w.Name, got)
		}
	}
	// api inherits every socket, web's among them, which web scales on.
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "[watcher:api] autoscale.max: [socket:web] is autoscaled by [watcher:web] too") {
		t.Errorf("warnings: %v, want one about web's socket read by api too", c.Warnings)
	}
}

// numprocesses is the start count, within [min, max]: one set outside is
// clamped with a warning; the default of 1 is clamped silently.
func TestAutoscaleClampsNumprocesses(t *testing.T) {
	t.Parallel()
	c, err := Parse("a.ini", []byte(`[socket:web]
port = 0

[watcher:big]
cmd = web --fd $(circus.sockets.web)
numprocesses = 40
autoscale.max = 16

[watcher:floor]
cmd = web --fd $(circus.sockets.api)
autoscale.min = 3
autoscale.max = 16

[socket:api]
port = 0
`))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Watchers[0].NumProcesses; n != 16 {
		t.Errorf("big: NumProcesses = %d, want 16", n)
	}
	if n := c.Watchers[1].NumProcesses; n != 3 {
		t.Errorf("floor: NumProcesses = %d, want 3", n)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "a.ini:6: [watcher:big] numprocesses: 40 is outside autoscale.min..autoscale.max (1..16): starting with 16") {
		t.Errorf("warnings = %v, want one about big's numprocesses", c.Warnings)
	}
}

// Two autoscaled watchers on one socket would each grow for the whole
// queue: loaded, with a warning at the second's autoscale.max.
func TestAutoscaleSharedSocket(t *testing.T) {
	t.Parallel()
	c, err := Parse("a.ini", []byte(`[socket:web]
port = 0

[watcher:a]
cmd = web --fd $(circus.sockets.web)
autoscale.max = 4

[watcher:b]
cmd = web --fd $(circus.sockets.web)
autoscale.max = 4

[watcher:fixed]
cmd = web --fd $(circus.sockets.web)
`))
	if err != nil {
		t.Fatal(err)
	}
	want := "a.ini:10: [watcher:b] autoscale.max: [socket:web] is autoscaled by [watcher:a] too"
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), want) {
		t.Errorf("warnings = %v, want one: %q", c.Warnings, want)
	}
}

func TestAutoscaleErrors(t *testing.T) {
	t.Parallel()
	const socks = `[socket:web]
port = 0

[socket:udp]
port = 0
type = SOCK_DGRAM

[socket:rp]
port = 0
so_reuseport = true

`
	tests := []struct {
		name, keys string
		want       string
	}{
		{"min above max", "cmd = w $(circus.sockets.web)\nautoscale.min = 5\nautoscale.max = 4\n",
			"a.ini:14: [watcher:w] autoscale.min: 5 is more than autoscale.max 4"},
		{"max zero", "cmd = w $(circus.sockets.web)\nautoscale.max = 0\n",
			"a.ini:14: [watcher:w] autoscale.max: must be at least 1 (leave it out to turn autoscaling off)"},
		{"max not a number", "cmd = w $(circus.sockets.web)\nautoscale.max = lots\n",
			`a.ini:14: [watcher:w] autoscale.max: "lots" is not a number`},
		{"min without max", "cmd = w $(circus.sockets.web)\nautoscale.min = 0\n",
			"a.ini:14: [watcher:w] autoscale.min: needs autoscale.max, which turns autoscaling on"},
		{"negative min", "cmd = w $(circus.sockets.web)\nautoscale.min = -1\nautoscale.max = 4\n",
			"a.ini:14: [watcher:w] autoscale.min: -1 is negative"},
		{"idle zero", "cmd = w $(circus.sockets.web)\nautoscale.max = 4\nautoscale.idle = 0\n",
			"a.ini:15: [watcher:w] autoscale.idle: must be more than 0"},
		{"down interval zero", "cmd = w $(circus.sockets.web)\nautoscale.max = 4\nautoscale.down_interval = 0\n",
			"a.ini:15: [watcher:w] autoscale.down_interval: must be more than 0"},
		{"queue per worker zero", "cmd = w $(circus.sockets.web)\nautoscale.max = 4\nautoscale.queue_per_worker = 0\n",
			"a.ini:15: [watcher:w] autoscale.queue_per_worker: 0 is out of range"},
		{"singleton", "cmd = w $(circus.sockets.web)\nsingleton = true\nautoscale.max = 4\n",
			"a.ini:15: [watcher:w] autoscale.max: a singleton runs at most 1 process"},
		{"no respawn", "cmd = w $(circus.sockets.web)\nrespawn = false\nautoscale.max = 4\n",
			"a.ini:15: [watcher:w] autoscale.max: needs respawn = true"},
		{"no socket", "cmd = w\nautoscale.max = 4\n",
			"a.ini:14: [watcher:w] autoscale.max: autoscaling reads the accept queue of the watcher's sockets, and it has none: pass one with $(circus.sockets.NAME), or set use_sockets = true"},
		{"udp", "cmd = w $(circus.sockets.udp)\nautoscale.max = 4\n",
			"a.ini:14: [watcher:w] autoscale.max: autoscaling reads the accept queue of [socket:udp], and it has none to read: type SOCK_DGRAM has no accept queue"},
		{"reuseport", "cmd = w $(circus.sockets.rp)\nautoscale.max = 4\n",
			"a.ini:14: [watcher:w] autoscale.max: autoscaling reads the accept queue of [socket:rp], and it has none to read: so_reuseport"},
		{"use_sockets takes all", "cmd = w\nuse_sockets = true\nautoscale.max = 4\n",
			"a.ini:15: [watcher:w] autoscale.max: autoscaling reads the accept queue of [socket:udp]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse("a.ini", []byte(socks+"[watcher:w]\n"+tt.keys))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A watcher added or set at run time reads the keys with the same rules;
// its sockets are the arbiter's to check (CheckAutoscale).
func TestAutoscaleAtRunTime(t *testing.T) {
	t.Parallel()
	w, err := NewWatcher("web", map[string]string{"cmd": "web $(circus.sockets.web)", "autoscale.max": "6", "autoscale.min": "0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if w.Autoscale.Max != 6 || w.Autoscale.Min != 0 {
		t.Errorf("NewWatcher: Autoscale = %+v, want 0..6", w.Autoscale)
	}
	w2, err := w.With(map[string]string{"autoscale.max": "3", "numprocesses": "5"})
	if err != nil {
		t.Fatal(err)
	}
	if w2.Autoscale.Max != 3 || w2.NumProcesses != 3 {
		t.Errorf("With: Autoscale.Max, NumProcesses = %d, %d, want 3, 3", w2.Autoscale.Max, w2.NumProcesses)
	}
	if _, err := w.With(map[string]string{"autoscale.min": "9"}); err == nil || !strings.Contains(err.Error(), "autoscale.min: 9 is more than autoscale.max 6") {
		t.Errorf("With(min 9) = %v, want min above max", err)
	}
	specs := []sockets.Spec{DefaultSocket("web"), DefaultSocket("other")}
	if err := CheckAutoscale(w, specs); err != nil {
		t.Errorf("CheckAutoscale(tcp) = %v", err)
	}
	specs[0].Type = "SOCK_DGRAM"
	if err := CheckAutoscale(w, specs); err == nil || !strings.Contains(err.Error(), "[socket:web]") {
		t.Errorf("CheckAutoscale(udp) = %v, want an error naming [socket:web]", err)
	}
}
