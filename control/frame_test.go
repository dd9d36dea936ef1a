package control

import (
	"strings"
	"testing"
)

// TestReplyFrames: a reply's frame headers, written in place in front of
// its body, are right for a short body and a long one, with and without
// the delimiter a REQ socket sends; a reply that cannot be rendered
// becomes an errno 5 one in the same frames.
func TestReplyFrames(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{})
	p := dialRaw(t, s)
	for _, tt := range []struct {
		command, want string
	}{
		{"list", `{"status": "ok", "time": T, "watchers": ["circusd-stats", "sleeper", "web srv"], "id": "r1"}`},
		{"big", `{"status": "ok", "time": T, "data": "` + strings.Repeat("x", 1000) + `", "id": "r1"}`},
		{"unrenderable", `{"status": "error", "reason": "cannot render reply: reply field ch: json: unsupported type: chan int", "tb": null, "time": T, "errno": 5, "id": "r1"}`},
	} {
		for _, delimited := range []bool{false, true} {
			req := []byte(`{"id": "r1", "command": "` + tt.command + `", "properties": {}}`)
			want := 1
			if delimited {
				p.send(nil, req)
				want = 2
			} else {
				p.send(req)
			}
			got := p.recv()
			if len(got) != want || (delimited && len(got[0]) != 0) {
				t.Errorf("%s (delimited %v): reply frames = %q, want %d", tt.command, delimited, got, want)
				continue
			}
			if body := withoutTime(got[len(got)-1]); body != tt.want {
				t.Errorf("%s (delimited %v): reply = %s, want %s", tt.command, delimited, body, tt.want)
			}
		}
	}
}
