package zmqendpoint

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"
	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// plainGuard reads straight through: the endpoints' own guards refuse
// oversized frames, which these tests do not send.
type plainGuard struct{ *zmtpguard.Diverter }

func newPlainGuard(nc net.Conn) *plainGuard { return &plainGuard{zmtpguard.NewDiverter(nc)} }

// echoPeer sends every message back; "flood" instead queues 64 KiB
// messages until the connection is gone.
type echoPeer struct {
	c       *Conn
	written int
}

func (p *echoPeer) Read(zc *zmq4.Conn) {
	for {
		msg, err := zc.RecvMsg()
		if err != nil {
			return
		}
		if msg.Type != zmq4.UsrMsg {
			continue
		}
		body := msg.Frames[0]
		if string(body) == "flood" {
			big := zmtpguard.AppendFrame(nil, 0, bytes.Repeat([]byte("x"), 64<<10))
			for {
				select {
				case p.c.Queue() <- big:
				case <-p.c.Gone():
					return
				}
			}
		}
		select {
		case p.c.Queue() <- zmtpguard.AppendFrame(nil, 0, body):
		case <-p.c.Gone():
			return
		}
	}
}

func (p *echoPeer) Written(n int)  { p.written += n }
func (p *echoPeer) Summary() []any { return []any{"written", p.written} }

func serveEcho(t *testing.T, o ServerOptions) (*Server[*plainGuard, *echoPeer], *testproc.Buffer) {
	t.Helper()
	log := &testproc.Buffer{}
	o.Options = Options{Name: "test", Mode: 0o600}
	o.Type, o.Noun = zmq4.Pair, "peer"
	o.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := Serve("tcp://127.0.0.1:0", o, newPlainGuard, func(c *Conn, _ *plainGuard) *echoPeer { return &echoPeer{c: c} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return s, log
}

// pair dials s and does the handshake as a PAIR peer.
func pair(t *testing.T, addr string) (net.Conn, *zmq4.Conn) {
	t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(addr, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	zc, err := zmq4.Open(nc, null.Security(), zmq4.Pair, nil, false, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return nc, zc
}

// A silent connection is dropped at the handshake deadline, and meanwhile
// another peer is served; Close ends every connection and waits.
func TestServeHandshakeDeadline(t *testing.T) {
	t.Parallel()
	s, _ := serveEcho(t, ServerOptions{HandshakeTimeout: 300 * time.Millisecond})
	silent, err := net.Dial("tcp", strings.TrimPrefix(s.Addr(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_, zc := pair(t, s.Addr())
	if err := zc.SendMsg(zmq4.NewMsgString("hello")); err != nil {
		t.Fatal(err)
	}
	msg, err := zc.RecvMsg()
	if err != nil || string(msg.Frames[0]) != "hello" {
		t.Fatalf("echo = %q, %v; want hello", msg.Frames, err)
	}
	peers := 0
	s.Each(func(*echoPeer) { peers++ })
	if peers != 1 {
		t.Errorf("Each saw %d peers, want 1 (the silent one is still in its handshake)", peers)
	}
	silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 128)
	for {
		_, err = silent.Read(b) // the server's greeting, then EOF
		if err != nil {
			break
		}
	}
	if !errors.Is(err, io.EOF) {
		t.Errorf("silent connection read = %v, want EOF at the handshake deadline", err)
	}
}

// A peer that reads nothing is disconnected at the write deadline, logged
// with its Summary, and leaves the Server's books.
func TestServeSlowPeer(t *testing.T) {
	t.Parallel()
	s, log := serveEcho(t, ServerOptions{WriteTimeout: 200 * time.Millisecond, QueueSize: 4, SendBuffer: 4096})
	_, zc := pair(t, s.Addr())
	if err := zc.SendMsg(zmq4.NewMsgString("flood")); err != nil {
		t.Fatal(err)
	}
	testproc.WaitFor(t, "the slow peer's disconnection", 10*time.Second, func() bool {
		peers := 0
		s.Each(func(*echoPeer) { peers++ })
		return peers == 0 && strings.Contains(log.String(), "disconnected slow peer")
	})
	if !strings.Contains(log.String(), "written=") {
		t.Errorf("slow-peer line lacks the Summary:\n%s", log)
	}
}
