package control

import (
	"fmt"
	"strings"
	"testing"
	"time"
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

// TestRenderNeverRegrows: a reply with a large Rendered field and a cursor
// per watcher beside it (a logs reply) renders into the buffer sized for
// it, never copied into a larger one.
func TestRenderNeverRegrows(t *testing.T) {
	var after Object
	for i := range 200 {
		after = append(after, Field{fmt.Sprintf("watcher-%03d", i), int64(1 << 40)})
	}
	rep := OK(Field{"lines", Rendered(`"` + strings.Repeat("x", 1<<20) + `"`)}, Field{"after", after}, Field{"more", false})
	b, err := rep.Render([]byte(`"0123456789abcdef"`), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if cap(b) != rep.renderSize() {
		t.Errorf("Render's buffer grew from %d to %d bytes for a reply of %d", rep.renderSize(), cap(b), len(b))
	}
}
