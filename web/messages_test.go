package web

import (
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// The page reads from and to as a scale event's sizes (a size of 0
// included) and as an upgrade's versions, the names the ZeroMQ wire uses.
func TestEncodeEventFromTo(t *testing.T) {
	at := time.Unix(1700000000, 0)
	tests := []struct {
		name string
		ev   pubsub.Event
		want string
	}{
		{"scale from zero", pubsub.Event{Kind: pubsub.Scale, Watcher: "web", From: 0, To: 3, Time: at, Seq: 7},
			`{"seq":7,"kind":"scale","watcher":"web","time":1700000000,"from":0,"to":3}`},
		{"upgrade", pubsub.Event{Kind: pubsub.Upgrade, Pid: 42, Versions: [2]string{"0.18.0", "0.19.0"}, Time: at, Seq: 8},
			`{"seq":8,"kind":"upgrade","watcher":"","pid":42,"time":1700000000,"from":"0.18.0","to":"0.19.0"}`},
		{"upgrade failed", pubsub.Event{Kind: pubsub.UpgradeFailed, Pid: 42, Reason: "exec: no such file", Time: at, Seq: 9},
			`{"seq":9,"kind":"upgrade_failed","watcher":"","pid":42,"time":1700000000,"reason":"exec: no such file"}`},
		{"spawn", pubsub.Event{Kind: pubsub.Spawn, Watcher: "web", Pid: 5, Wid: 1, Time: at, Seq: 10},
			`{"seq":10,"kind":"spawn","watcher":"web","pid":5,"wid":1,"time":1700000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(encodeEvent(tt.ev)); got != tt.want {
				t.Errorf("encodeEvent(%v) = %s, want %s", tt.ev.Kind, got, tt.want)
			}
		})
	}
}
