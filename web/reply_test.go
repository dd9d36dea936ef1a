package web_test

import (
	"testing"

	"github.com/gorilla/websocket"

	"github.com/ringmaster-dev/ringmaster/web"
)

// TestReplyOutOfRangeID: a request whose id is a number beyond float64
// gets a reply the page can parse, its envelope id as sent. Found by
// FuzzWebSocket: the reply was Python's JSON with "id": Infinity, which
// JSON.parse refuses.
func TestReplyOutOfRangeID(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	p := e.dial("", nil)
	p.next()
	if err := p.conn.WriteMessage(websocket.TextMessage, []byte(`{"id": 1e400, "command": "list"}`)); err != nil {
		t.Fatal(err)
	}
	// next fails the test on a message that is not JSON.
	m := p.until("reply", func(m msg) bool { return m.Type == "reply" })
	if string(m.ID) != "1e400" {
		t.Errorf("reply id = %s, want 1e400 as sent: %s", m.ID, m.raw)
	}
	if m.Reply["status"] != "error" || m.Reply["reason"] == "" {
		t.Errorf("reply %s, want an error saying why", m.raw)
	}
	if r := p.replyTo(p.send("list", `{}`)); r["status"] != "ok" {
		t.Fatalf("list afterwards: %v", r)
	}
}
