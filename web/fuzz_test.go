package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/web"
)

// echo answers every command with its name and properties. The fuzzer
// drives the console's decoding, not the command table: a fuzzed "add"
// through the real table would run any program it named, as root.
type echo struct{}

func (echo) Handle(_ context.Context, req control.Request) control.Reply {
	return control.OK(control.Field{Key: "command", Value: req.Command}, control.Field{Key: "properties", Value: req.Properties})
}

func (e echo) Accept(req control.Request) func(context.Context) control.Reply {
	return func(ctx context.Context) control.Reply { return e.Handle(ctx, req) }
}

// FuzzWebSocket sends each input to a real console on 127.0.0.1 as one
// WebSocket message from the page, text or binary, then a probe command,
// over one connection kept between inputs. It checks that a binary message
// and a valid cast get no reply, that anything else gets exactly one,
// valid JSON echoing the id as sent, an error for what DecodeRequest
// refuses, and that the probe is still answered: the page stays usable.
// A message over the console's 64 KiB limit must close the connection.
func FuzzWebSocket(f *testing.F) {
	for _, s := range []string{
		`{"id": 1, "command": "list", "properties": {}}`,
		`{"id": "a", "command": "incr", "properties": {"name": "sleepers", "nb": 2, "waiting": true}}`,
		`{"id": [1, {"x": null}], "command": "stop", "msg_type": "cast"}`,
		`{"command": "status", "msg_type": "call", "properties": null}`,
		`{"id": 1e400, "command": "x", "properties": {"a": "\ud800"}}`,
		`{"id": 7, "command": 5}`, `{"id": 8}`, `[1]`, `"str"`, `not json`, ``, "{\"id\": \"\xff\"}", `{"id": 9, "id": 10, "command": "a"}`,
	} {
		f.Add(false, []byte(s))
	}
	f.Add(true, []byte(`{"id": 1, "command": "list"}`))
	url := fuzzConsole(f)
	var page *websocket.Conn
	f.Cleanup(func() {
		if page != nil {
			page.Close()
		}
	})
	probes := 0
	f.Fuzz(func(t *testing.T, binary bool, data []byte) {
		if page == nil {
			c, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			page = c
		}
		t.Cleanup(func() {
			if t.Failed() && page != nil {
				// Replies still to come would be taken for the next input's.
				page.Close()
				page = nil
			}
		})
		typ := websocket.TextMessage
		if binary {
			typ = websocket.BinaryMessage
		}
		if err := page.WriteMessage(typ, data); err != nil {
			t.Fatalf("write: %v", err)
		}
		if len(data) > 64<<10 {
			expectClosed(t, page)
			page.Close()
			page = nil
			return
		}
		replies := 1 // what the input should get
		req, bad := control.DecodeRequest(data)
		if binary || bad == nil && req.IsCast() {
			replies = 0
		}
		probes++
		probe := fmt.Sprintf(`"probe %d"`, probes)
		if err := page.WriteMessage(websocket.TextMessage, []byte(`{"id": `+probe+`, "command": "probe"}`)); err != nil {
			t.Fatalf("write probe: %v", err)
		}
		// Commands run concurrently: the replies come in any order.
		_ = page.SetReadDeadline(time.Now().Add(10 * time.Second))
		for got, probed := 0, false; got < replies || !probed; {
			r := nextReply(t, page)
			if string(r.ID) == probe && !probed {
				probed = true
				continue
			}
			got++
			if got > replies {
				t.Fatalf("reply %s to %q, which should get none", r.raw, data)
			}
			checkReply(t, data, req, bad, r)
		}
	})
}

// fuzzConsole starts an arbiter with one watcher and a console for it
// whose commands are echoed, and returns the WebSocket's URL.
func fuzzConsole(f *testing.F) string {
	cfg := arbtest.LoadINI(f, worker, twoSleepers)
	bus := pubsub.NewBus()
	a, err := arbiter.New(cfg, arbiter.Options{Publisher: bus})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- a.Run(ctx) }()
	srv, err := web.New(web.Options{Arbiter: a, Bus: bus, Commands: echo{}})
	if err != nil {
		cancel()
		f.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	f.Cleanup(func() {
		if err := srv.Close(); err != nil {
			f.Errorf("Close: %v", err)
		}
		if err := <-served; err != nil {
			f.Errorf("Serve: %v", err)
		}
		cancel()
		if err := <-stopped; err != nil {
			f.Errorf("Run: %v", err)
		}
	})
	<-a.Started()
	return "ws://" + ln.Addr().String() + "/ws"
}

// fuzzReply is a reply message from the console.
type fuzzReply struct {
	ID    json.RawMessage `json:"id"`
	Reply struct {
		Status  string          `json:"status"`
		Reason  string          `json:"reason"`
		ID      json.RawMessage `json:"id"`
		Command string          `json:"command"`
	} `json:"reply"`
	raw []byte
}

// nextReply skips the stream's messages (snapshot, stats...) up to the
// next reply, which must be valid JSON.
func nextReply(t *testing.T, page *websocket.Conn) fuzzReply {
	t.Helper()
	for {
		_, b, err := page.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("message not JSON: %v: %q", err, b)
		}
		if m.Type != "reply" {
			continue
		}
		r := fuzzReply{raw: b}
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("reply not JSON: %v: %q", err, b)
		}
		return r
	}
}

// checkReply checks the reply to data: an error with a reason for a
// request DecodeRequest refuses, else the echo of its command; the id the
// page matches on is as sent, and so is Circus's id in the reply, unless
// Circus's rendering of the reply (Python's JSON) is no JSON a page can
// parse, when the reply says so instead.
func checkReply(t *testing.T, data []byte, req control.Request, bad *control.Error, r fuzzReply) {
	t.Helper()
	if !reflect.DeepEqual(decodeAny(t, r.ID, true), decodeAny(t, req.ID, true)) {
		t.Errorf("reply %s to %q: id is not %s", r.raw, data, req.ID)
	}
	rep := echo{}.Handle(context.Background(), req)
	if bad != nil {
		rep = control.Fail(bad)
	}
	if circus, err := rep.Render(req.ID, time.Now()); err != nil || !json.Valid(circus) {
		if r.Reply.Status != "error" || !strings.Contains(r.Reply.Reason, "not renderable") || string(r.Reply.ID) != "null" {
			t.Errorf("reply %s to %q: want an error saying the reply is not renderable", r.raw, data)
		}
		return
	}
	// Circus writes numbers back as Python does: 0e0 becomes 0.0.
	if !reflect.DeepEqual(decodeAny(t, r.Reply.ID, false), decodeAny(t, req.ID, false)) {
		t.Errorf("reply %s to %q: Circus's id is not %s", r.raw, data, req.ID)
	}
	switch {
	case bad != nil && (r.Reply.Status != "error" || r.Reply.Reason == ""):
		t.Errorf("reply %s to %q: want an error with a reason (%v)", r.raw, data, bad.Reason)
	case bad == nil && (r.Reply.Status != "ok" || r.Reply.Command != req.Command):
		t.Errorf("reply %s to %q: want the echo of command %q", r.raw, data, req.Command)
	}
}

// decodeAny decodes a JSON value for comparison, numbers as written if
// exact, else as float64.
func decodeAny(t *testing.T, raw json.RawMessage, exact bool) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	if exact {
		d.UseNumber()
	}
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("id %q: %v", raw, err)
	}
	return v
}

// expectClosed reads until the console closes the connection, which it
// must do with "message too big".
func expectClosed(t *testing.T, page *websocket.Conn) {
	t.Helper()
	_ = page.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := page.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) && !strings.Contains(err.Error(), "reset") {
			t.Fatalf("after a message over 64 KiB: %v, want the connection closed as too big", err)
		}
		return
	}
}
