package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const systemPython = testproc.SystemPython

var needPyzmq = testproc.NeedPyzmq

// testHandler answers a few commands shaped like Circus's:
//
//	list              {"watchers": [...]}, §2.7's names
//	status name=X     the status-with-name quirk ("active")
//	restart           §2.7's info object
//	incr              requires name (errno 3 as Circus words it)
//	echo              every property back, sorted by key
//	block             waits until gate is closed or the server closes
//	fail              errno 5
//	anything else     errno 2 "unknown command: 'x'"
//
// Casts are reported on casts.
type testHandler struct {
	gate    chan struct{} // closed to release "block"
	started chan string   // "block" reports the id it started for, if non-nil
	casts   chan Request
}

func newTestHandler() *testHandler {
	return &testHandler{gate: make(chan struct{}), started: make(chan string, 100), casts: make(chan Request, 100)}
}

func (h *testHandler) Handle(ctx context.Context, req Request) Reply {
	if req.IsCast() {
		h.casts <- req
	}
	switch req.Command {
	case "list":
		return OK(Field{"watchers", []string{"circusd-stats", "sleeper", "web srv"}})
	case "status":
		if !req.Has("name") {
			return OK(Field{"statuses", map[string]string{"sleeper": "active"}})
		}
		return State("active")
	case "restart":
		return OK(Field{"info", Object{
			{"stopped", []int{9095, 9096}}, {"started", []int{9097, 9098}}, {"kept", []int{}}}})
	case "incr":
		if _, err := req.String("name"); err != nil {
			return Fail(err)
		}
		return OK(Field{"numprocesses", 2})
	case "echo":
		var o Object
		for k, v := range req.Properties {
			o = append(o, Field{k, v})
		}
		return OK(Field{"properties", sortObject(o)})
	case "block":
		h.started <- string(req.ID)
		select {
		case <-h.gate:
			return OK()
		case <-ctx.Done():
			return Failf(CommandError, "cancelled")
		}
	case "fail":
		return Failf(CommandError, "it failed")
	case "big":
		// A body longer than 255 bytes takes a frame's long header.
		return OK(Field{"data", Rendered(`"` + strings.Repeat("x", 1000) + `"`)})
	case "unrenderable":
		return OK(Field{"ch", make(chan int)})
	}
	return Failf(UnknownCommand, "unknown command: %s", pyQuote(req.Command))
}

func sortObject(o Object) Object {
	for i := range o {
		for j := i + 1; j < len(o); j++ {
			if o[j].Key < o[i].Key {
				o[i], o[j] = o[j], o[i]
			}
		}
	}
	return o
}

// serve starts a Server on a loopback port and closes it with the test.
func serve(t testing.TB, h Handler, opts ServerOptions) *Server {
	t.Helper()
	if opts.Logger == nil {
		if tt, ok := t.(*testing.T); ok {
			opts.Logger = slog.New(slog.NewTextHandler(tt.Output(), nil))
		}
	}
	s, err := Listen("tcp://127.0.0.1:0", h, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s
}

func dial(t testing.TB, endpoint string) *Client {
	t.Helper()
	c, err := Dial(endpoint, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawPeer is a bare ZMTP DEALER (zmq4's codec, no socket machinery) that
// sends arbitrary frame lists.
type rawPeer struct {
	t  testing.TB
	nc net.Conn
	zc *zmq4.Conn
}

func dialRaw(t testing.TB, s *Server) *rawPeer {
	t.Helper()
	nc, err := net.Dial("tcp", s.Addr()[len("tcp://"):])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	zc, err := zmq4.Open(nc, null.Security(), zmq4.Dealer, zmq4.SocketIdentity(randomHex()), false, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	nc.SetDeadline(time.Time{})
	return &rawPeer{t: t, nc: nc, zc: zc}
}

func (p *rawPeer) send(frames ...[]byte) {
	p.t.Helper()
	if err := p.zc.SendMsg(zmq4.NewMsgFrom(frames...)); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// recv returns the next message's frames, failing after 5s.
func (p *rawPeer) recv() [][]byte {
	p.t.Helper()
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	defer p.nc.SetReadDeadline(time.Time{})
	for {
		msg, err := p.zc.RecvMsg()
		if err != nil {
			p.t.Fatalf("recv: %v", err)
		}
		if msg.Type == zmq4.UsrMsg {
			return msg.Frames
		}
	}
}

// replyFields decodes a reply frame into a map, for field checks.
func replyFields(t testing.TB, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("reply %q: %v", raw, err)
	}
	return m
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
