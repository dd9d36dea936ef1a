package pubsub

import (
	"context"
	"encoding/json"
	"os/exec"
	"testing"
	"time"
)

var at = time.Unix(1795464673, 793150000)

func TestTopicBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		ev        Event
		wantTopic string
		wantBody  string
	}{
		{"spawn", Event{Kind: Spawn, Watcher: "web", Pid: 9099, Wid: 1, Time: at, Seq: 1},
			"watcher.web.spawn", `{"process_pid": 9099, "time": 1795464673.79315, "seq": 1}`},
		{"reap signalled", Event{Kind: Reap, Watcher: "web", Pid: 9099, Time: at, ExitCode: -15, Seq: 2},
			"watcher.web.reap", `{"process_pid": 9099, "time": 1795464673.79315, "exit_code": -15, "seq": 2}`},
		{"reap exited", Event{Kind: Reap, Watcher: "web", Pid: 7, Time: at, ExitCode: 3, Seq: 3},
			"watcher.web.reap", `{"process_pid": 7, "time": 1795464673.79315, "exit_code": 3, "seq": 3}`},
		{"kill", Event{Kind: Kill, Watcher: "web", Pid: 9099, Signal: 15, Time: at, Seq: 4},
			"watcher.web.kill", `{"process_pid": 9099, "time": 1795464673.79315, "seq": 4}`},
		{"start, name with space and capitals", Event{Kind: Start, Watcher: "Web Srv", Time: at, Seq: 5},
			"watcher.web_srv.start", `{"time": 1795464673.79315, "seq": 5}`},
		{"stop", Event{Kind: Stop, Watcher: "web", Time: at, Seq: 6},
			"watcher.web.stop", `{"time": 1795464673.79315, "seq": 6}`},
		{"reload", Event{Kind: Reload, Watcher: "web", Time: at, Seq: 7},
			"watcher.web.reload", `{"time": 1795464673.79315, "seq": 7}`},
		{"updated", Event{Kind: Updated, Watcher: "web", Time: at, Seq: 8},
			"watcher.web.updated", `{"time": 1795464673.79315, "seq": 8}`},
		{"add", Event{Kind: Add, Watcher: "web", Time: at, Seq: 9},
			"watcher.web.add", `{"time": 1795464673.79315, "seq": 9}`},
		{"remove", Event{Kind: Remove, Watcher: "web", Time: at, Seq: 10},
			"watcher.web.remove", `{"time": 1795464673.79315, "seq": 10}`},
		{"flapping, non-ASCII reason", Event{Kind: Flapping, Watcher: "web", Time: at, Seq: 11,
			Reason: "5 exits in 10s — «café» \"x\"\\ 🚀\n"},
			"watcher.web.flapping",
			`{"time": 1795464673.79315, "reason": "5 exits in 10s \u2014 \u00abcaf\u00e9\u00bb \"x\"\\ \ud83d\ude80\n", "seq": 11}`},
		{"health", Event{Kind: Health, Watcher: "web", Pid: 4242, Wid: 2, Time: at, Seq: 14, Reason: "http://127.0.0.1:8080/: 3 failed checks in a row"},
			"watcher.web.health", `{"process_pid": 4242, "time": 1795464673.79315, "reason": "http://127.0.0.1:8080/: 3 failed checks in a row", "seq": 14}`},
		{"limit", Event{Kind: Limit, Watcher: "web", Pid: 4242, Time: at, Seq: 16, Reason: "rss 310 MiB over max_rss 300 MiB for 10s"},
			"watcher.web.limit", `{"process_pid": 4242, "time": 1795464673.79315, "reason": "rss 310 MiB over max_rss 300 MiB for 10s", "seq": 16}`},
		{"ready", Event{Kind: Ready, Watcher: "web", Pid: 4242, Time: at, Seq: 17},
			"watcher.web.ready", `{"process_pid": 4242, "time": 1795464673.79315, "seq": 17}`},
		{"oom", Event{Kind: OOM, Watcher: "web", Time: at, Seq: 18, Reason: "memory.max 64 MiB"},
			"watcher.web.oom", `{"process_pid": 0, "time": 1795464673.79315, "reason": "memory.max 64 MiB", "seq": 18}`},
		{"hook_success", Event{Kind: HookSuccess, Watcher: "web", Hook: "before_start", Time: at, Seq: 19},
			"watcher.web.hook_success", `{"name": "before_start", "time": 1795464673.79315, "seq": 19}`},
		{"hook_failure", Event{Kind: HookFailure, Watcher: "web", Hook: "after_spawn", Time: at, Seq: 20, Reason: "exit status 1"},
			"watcher.web.hook_failure", `{"name": "after_spawn", "time": 1795464673.79315, "error": "exit status 1", "seq": 20}`},
		{"command", Event{Kind: Command, Watcher: "web", Time: at, Seq: 21, Audit: &Audit{
			Command: "incr", Properties: []byte(`{"name":"web","nb":2}`), Peer: "uid 1000 (deploy) pid 4411",
			UID: 1000, PID: 4411, Via: "control", Status: "ok", Result: []byte(`{"numprocesses":3}`)}},
			"watcher.web.command", `{"command": "incr", "properties": {"name":"web","nb":2}, "peer": "uid 1000 (deploy) pid 4411", "uid": 1000, "pid": 4411, "via": "control", "status": "ok", "result": {"numprocesses":3}, "time": 1795464673.79315, "seq": 21}`},
		{"command refused, sender unknown", Event{Kind: Command, Time: at, Seq: 22, Audit: &Audit{
			Command: "quit", Peer: "remote 10.0.0.7:4410", UID: -1, Via: "control", Status: "refused", Reason: "permission denied"}},
			"arbiter.command", `{"command": "quit", "properties": {}, "peer": "remote 10.0.0.7:4410", "uid": null, "pid": null, "via": "control", "status": "refused", "reason": "permission denied", "time": 1795464673.79315, "seq": 22}`},
		{"scale", Event{Kind: Scale, Watcher: "web", From: 1, To: 16, Time: at, Seq: 23, Reason: "queue 15 for 200ms"},
			"watcher.web.scale", `{"from": 1, "to": 16, "time": 1795464673.79315, "reason": "queue 15 for 200ms", "seq": 23}`},
		{"orphan", Event{Kind: Orphan, Pid: 4242, Time: at, ExitCode: 0, Seq: 12},
			"arbiter.orphan", `{"process_pid": 4242, "time": 1795464673.79315, "exit_code": 0, "seq": 12}`},
		{"arbiter start, whole second", Event{Kind: Start, Time: time.Unix(1795464673, 0), Seq: 13},
			"arbiter.start", `{"time": 1795464673.0, "seq": 13}`},
		{"arbiter stop", Event{Kind: Stop, Time: at, Seq: 14},
			"arbiter.stop", `{"time": 1795464673.79315, "seq": 14}`},
		{"arbiter reloadconfig, sub-microsecond rounded", Event{Kind: ReloadConfig, Time: time.Unix(1795464673, 100000999), Seq: 15},
			"arbiter.reloadconfig", `{"time": 1795464673.100001, "seq": 15}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Topic(tt.ev); got != tt.wantTopic {
				t.Errorf("Topic(%+v) = %q, want %q", tt.ev, got, tt.wantTopic)
			}
			if got := string(Body(tt.ev)); got != tt.wantBody {
				t.Errorf("Body(%+v) =\n%s\nwant\n%s", tt.ev, got, tt.wantBody)
			}
			if !json.Valid(Body(tt.ev)) {
				t.Errorf("Body(%+v) is not valid JSON", tt.ev)
			}
		})
	}
}

// Python's own json.dumps is the reference for string escaping.
func TestBodyMatchesPythonJSON(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath(systemPython); err != nil {
		t.Skipf("no %s", systemPython)
	}
	reasons := []string{"", "plain", "tab\tcr\rnl\nbs\bff\f", "ctl \x00\x01\x1f del \x7f", "quote\" back\\ slash/",
		"é ü ß ñ", "日本語", "emoji 🚀 𝄞", "invalid \xff utf8"}
	script := `import json, sys
for r in json.load(sys.stdin):
    print(json.dumps({"time": 1795464673.79315, "reason": r, "seq": 1}))`
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, systemPython, "-c", script)
	in, _ := json.Marshal(reasons) // encoding/json turns invalid UTF-8 into U+FFFD, as we do
	cmd.Stdin = bytesReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	lines := splitLines(out)
	if len(lines) != len(reasons) {
		t.Fatalf("python printed %d lines, want %d", len(lines), len(reasons))
	}
	for i, r := range reasons {
		got := string(Body(Event{Kind: Flapping, Watcher: "w", Time: at, Reason: r, Seq: 1}))
		if got != lines[i] {
			t.Errorf("Body(reason %q) =\n%s\npython json.dumps:\n%s", r, got, lines[i])
		}
	}
}
