package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The status table, from a reply with details, read at a fixed time.
func TestStatusTable(t *testing.T) {
	t.Parallel()
	now := time.Unix(1700000100, 0)
	tests := []struct {
		name, reply, watcher, want string
	}{
		{name: "all", reply: `{"status": "ok", "time": 1700000100.0,
			"statuses": {"web": "active", "crashy": "stopped", "Api": "active"},
			"details": {"crashy": "flapping, retry 2 of 5 in 7.0s"},
			"watchers": {
				"web": {"state": "active", "detail": "", "target": 3, "running": 3, "ready": 2, "uptime": 3723.4,
					"restarts": {"signal": 1}, "last_exit": {"pid": 4242, "wid": 2, "code": -1, "signal": 9, "signal_name": "SIGKILL",
					"expected": false, "reason": "signal", "time": 1700000088.0}},
				"crashy": {"state": "stopped", "detail": "flapping, retry 2 of 5 in 7.0s", "target": 1, "running": 0, "ready": 0,
					"uptime": null, "restarts": {"exit": 9, "oom": 1}, "last_exit": {"pid": 77, "wid": 1, "code": 3, "signal": 0,
					"signal_name": "", "expected": false, "reason": "exit", "time": 1700000098.5}},
				"Api": {"state": "active", "detail": "", "target": 1, "running": 1, "ready": 1, "uptime": 90000,
					"restarts": {"max_age": 2}, "last_exit": {"pid": 12, "wid": 1, "code": -1, "signal": 15,
					"signal_name": "SIGTERM", "expected": true, "reason": "max_age", "time": 1699996500.0}},
				"idle": {"state": "stopped", "detail": "", "target": 2, "running": 0, "ready": 0, "uptime": null,
					"restarts": {}, "last_exit": null}
			}, "id": 1}`,
			want: "" +
				"NAME    STATE                                     READY/RUNNING/TARGET  UPTIME  RESTARTS            LAST EXIT\n" +
				"Api     active                                    1/1/1                 1d01h   2                   SIGTERM (max_age; expected) 1h00m ago, pid 12\n" +
				"crashy  stopped (flapping, retry 2 of 5 in 7.0s)  0/0/1                 -       10 (exit 9, oom 1)  exit 3 (not expected) 1s ago, pid 77\n" +
				"idle    stopped                                   0/0/2                 -       0                   -\n" +
				"web     active                                    2/3/3                 1h02m   1                   SIGKILL (not expected) 12s ago, pid 4242"},
		{name: "one", watcher: "web", reply: `{"status": "active", "time": 1700000100.0, "detail": "",
			"watcher": {"state": "active", "detail": "", "target": 2, "running": 2, "ready": 1, "uptime": 65,
				"restarts": {}, "last_exit": null, "processes": [
				{"pid": 101, "wid": 1, "started": 1700000035.0, "uptime": 65, "ready": true, "stopping": false, "restarts": 0, "status": ""},
				{"pid": 102, "wid": 2, "started": 1700000098.0, "uptime": 2, "ready": false, "stopping": false, "restarts": 3, "status": "warming up"},
				{"pid": 99, "wid": 2, "started": 1700000000.0, "uptime": 100, "ready": true, "stopping": true, "restarts": 3, "status": ""}
			]}, "id": 1}`,
			want: "" +
				"NAME  STATE   READY/RUNNING/TARGET  UPTIME  RESTARTS  LAST EXIT\n" +
				"web   active  1/2/2                 1m05s   0         -\n" +
				"\n" +
				"PID  WID  UPTIME  READY     RESTARTS  STATUS\n" +
				"101  1    1m05s   yes       0\n" +
				"102  2    2s      no        3         warming up\n" +
				"99   2    1m40s   stopping  3"},
		{name: "no workers", watcher: "idle", reply: `{"status": "stopped", "time": 1700000100.0, "detail": "",
			"watcher": {"state": "stopped", "detail": "", "target": 2, "running": 0, "ready": 0, "uptime": null,
				"restarts": {}, "last_exit": null, "processes": []}, "id": 1}`,
			want: "" +
				"NAME  STATE    READY/RUNNING/TARGET  UPTIME  RESTARTS  LAST EXIT\n" +
				"idle  stopped  0/0/2                 -       0         -\n" +
				"\n" +
				"no workers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := decodeReply(json.RawMessage(tt.reply))
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := statusTable(r, tt.watcher, now)
			if err != nil || !ok {
				t.Fatalf("statusTable = %v, %v", ok, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("statusTable (-want +got):\n%s", diff)
			}
		})
	}
}

// A reply without details (Circus's own arbiter) has no table: status
// prints Circus's lines even on a terminal.
func TestStatusTableCircus(t *testing.T) {
	t.Parallel()
	r, err := decodeReply(json.RawMessage(`{"status": "ok", "time": 1700000100.0, "statuses": {"web": "active"}, "id": 1}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := statusText(r, &parsed{terminal: true})
	if err != nil || out != "web: active" {
		t.Errorf("statusText = %q, %v; want Circus's line", out, err)
	}
}

func TestHuman(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-time.Second, "0s"}, {0, "0s"}, {59 * time.Second, "59s"}, {61 * time.Second, "1m01s"},
		{time.Hour + 2*time.Minute + 59*time.Second, "1h02m"}, {49 * time.Hour, "2d01h"},
	} {
		if got := human(tc.d); got != tc.want {
			t.Errorf("human(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

// A details member of the wrong shape is an unexpected reply, not a
// table of zeros.
func TestStatusTableMalformed(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		`{"status": "ok", "statuses": {"web": "active"}, "watchers": {"web": {"target": "three"}}}`,
		`{"status": "ok", "statuses": {"web": "active"}, "watchers": [1, 2]}`,
		`{"status": "active", "watcher": {"last_exit": {"pid": "x"}}}`,
	} {
		r, err := decodeReply(json.RawMessage(raw))
		if err != nil {
			t.Fatal(err)
		}
		if out, err := statusText(r, &parsed{terminal: true}); err == nil {
			t.Errorf("statusText(%s) = %q, want an error", raw, out)
		}
	}
}
