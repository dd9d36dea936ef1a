package control

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"
)

// timeRE matches the time value of a reply, for comparisons that ignore it.
var timeRE = regexp.MustCompile(`"time": [0-9.e+-]+`)

func withoutTime(b []byte) string { return timeRE.ReplaceAllString(string(b), `"time": T`) }

// literals are reference §2.7's exchanges, request and reply frames as
// circusd 0.19 sent them.
var literals = []struct {
	name, request, reply string
	rep                  Reply
}{
	{"list", `{"id": "a1", "command": "list", "properties": {}}`,
		`{"status": "ok", "time": 1795464666.2683172, "watchers": ["circusd-stats", "sleeper", "web srv"], "id": "a1"}`,
		OK(Field{"watchers", []string{"circusd-stats", "sleeper", "web srv"}})},
	{"status with name", `{"id": "a4", "command": "status", "properties": {"name": "sleeper"}}`,
		`{"status": "active", "time": 1795464666.2729175, "id": "a4"}`,
		State("active")},
	{"restart waiting", `{"id": "b7", "command": "restart", "properties": {"name": "sleeper", "waiting": true}}`,
		`{"status": "ok", "time": 1795464673.5971596, "info": {"stopped": [9095, 9096], "started": [9097, 9098], "kept": []}, "id": "b7"}`,
		OK(Field{"info", Object{{"stopped", []int{9095, 9096}}, {"started", []int{9097, 9098}}, {"kept", []int{}}}})},
	{"incr without name", `{"id": "a14", "command": "incr", "properties": {}}`,
		`{"status": "error", "reason": "message invalid 'name' is missing", "tb": null, "time": 1795464666.2818432, "errno": 3, "id": "a14"}`,
		Fail(errMissing("name"))},
	{"lock conflict", `{"id": "b2", "command": "incr", "properties": {"name": "sleeper", "waiting": true}}`,
		`{"status": "error", "reason": "arbiter is already running watcher_incr command", "tb": null, "time": 1795464673.409775, "errno": 5, "id": "b2"}`,
		Failf(CommandError, "arbiter is already running watcher_incr command")},
	{"listsockets", `{"id": "s1", "command": "listsockets", "properties": {}}`,
		`{"status": "ok", "time": 1795464666.1, "sockets": [{"fd": 7, "name": "web", "backlog": 2048, "host": "127.0.0.1", "port": 18080}], "id": "s1"}`,
		OK(Field{"sockets", []Object{{{"fd", 7}, {"name", "web"}, {"backlog", 2048}, {"host", "127.0.0.1"}, {"port", 18080}}}})},
}

func TestRenderLiterals(t *testing.T) {
	t.Parallel()
	for _, tc := range literals {
		t.Run(tc.name, func(t *testing.T) {
			req, derr := DecodeRequest([]byte(tc.request))
			if derr != nil {
				t.Fatal(derr)
			}
			got, err := tc.rep.Render(req.ID, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if withoutTime(got) != withoutTime([]byte(tc.reply)) {
				t.Errorf("Render() = %s\nwant       %s", got, tc.reply)
			}
		})
	}
}

func TestRenderTime(t *testing.T) {
	t.Parallel()
	got, err := OK().Render(nil, time.Unix(1795464666, 268317200))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"status": "ok", "time": 1795464666.2683172, "id": null}`; string(got) != want {
		t.Errorf("Render() = %s, want %s", got, want)
	}
}

func TestPyJSON(t *testing.T) {
	t.Parallel()
	// Python 3: json.dumps(x) for each (dicts in insertion order).
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"ascii escapes", "a\"b\\c\nd\te\x01\x7f", `"a\"b\\c\nd\te\u0001\u007f"`},
		{"non-ascii", "é€😀<>&", `"\u00e9\u20ac\ud83d\ude00<>&"`},
		{"nested", map[string]any{"b": []any{1, 2.0, "x", nil, true}, "a": map[string]int{}},
			`{"a": {}, "b": [1, 2.0, "x", null, true]}`},
		{"int keys", map[int]string{10: "x", 9: "y"}, `{"9": "y", "10": "x"}`},
		{"object order", Object{{"z", 1}, {"a", Object{{"y", []string{}}}}}, `{"z": 1, "a": {"y": []}}`},
		{"nil slice", []int(nil), `[]`},
		{"rendered", Object{{"lines", Rendered(`[{"data": "x"}, {"data": "y"}]`)}}, `{"lines": [{"data": "x"}, {"data": "y"}]}`},
		{"raw", json.RawMessage(`{"b":1,"a":[1.50,2e2,-0,12345678901234567890, "\u00e9\/"],"c":{}}`),
			`{"b": 1, "a": [1.5, 200.0, 0, 12345678901234567890, "\u00e9/"], "c": {}}`},
		{"struct", struct {
			B int    `json:"b"`
			A string `json:"a"`
		}{1, "é"}, `{"b": 1, "a": "\u00e9"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := appendPy(nil, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("appendPy(%#v) = %s, want %s", tc.in, got, tc.want)
			}
		})
	}
	if _, err := appendPy(nil, map[string]any{"c": make(chan int)}); err == nil {
		t.Errorf("appendPy(chan) = nil error, want one")
	}
}
