package web_test

import (
	"encoding/json"
	"net"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/web"
)

// An autoscaled watcher carries its bounds and its queue, stats samples
// carry its workers and queue over time, and a scale event its sizes. Six
// connections that send nothing, on a pool whose workers take one each
// and wait for a line: the pool grows to its max of 4, and 2 stay queued.
func TestAutoscaleOnThePage(t *testing.T) {
	t.Parallel()
	e := start(t, `
[socket:web]
host = 127.0.0.1
port = 0

[watcher:web]
cmd = WORKER serial $(circus.sockets.web) 10ms
numprocesses = 1
autoscale.max = 4
autoscale.idle = 3600
graceful_timeout = 1
`, web.Options{Interval: 200 * time.Millisecond})
	addr := e.a.Sockets()[0].Addr()
	p := e.dial("", nil)
	for range 6 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	type scale struct{ Min, Max, Queue, Backlog int }
	var got struct {
		Watcher struct {
			Autoscale *scale `json:"autoscale"`
		} `json:"watcher"`
		Event struct {
			From *int `json:"from"`
			To   *int `json:"to"`
		} `json:"event"`
		Watchers map[string]struct {
			Workers int  `json:"workers"`
			Queue   *int `json:"queue"`
		} `json:"watchers"`
	}
	decode := func(m msg) {
		t.Helper()
		got.Watcher.Autoscale, got.Event.From, got.Event.To, got.Watchers = nil, nil, nil, nil
		if err := json.Unmarshal([]byte(m.raw), &got); err != nil && m.Type != "snapshot" {
			t.Fatal(err)
		}
	}
	p.until("web with 4 workers and 2 queued", func(m msg) bool {
		if m.Type != "watcher" || m.Watcher.Name != "web" {
			return false
		}
		decode(m)
		a := got.Watcher.Autoscale
		return len(m.Watcher.Workers) == 4 && a != nil && a.Queue == 2
	})
	if a := *got.Watcher.Autoscale; a != (scale{Min: 1, Max: 4, Queue: 2, Backlog: 2048}) {
		t.Errorf("autoscale = %+v, want 1..4, 2 queued of 2048", a)
	}
	p.until("a scale event from 1 to 4", func(m msg) bool {
		if m.Type != "event" || m.Event.Kind != "scale" {
			return false
		}
		decode(m)
		return got.Event.From != nil && *got.Event.From == 1 && got.Event.To != nil && *got.Event.To == 4
	})
	p.until("a stats sample with 4 workers and 2 queued", func(m msg) bool {
		if m.Type != "stats" {
			return false
		}
		decode(m)
		w := got.Watchers["web"]
		return w.Workers == 4 && w.Queue != nil && *w.Queue == 2
	})
}
