package control

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

// FuzzDecodeRequest: decoding never panics, and whatever it accepts or
// refuses renders as a reply that is valid JSON echoing the id.
func FuzzDecodeRequest(f *testing.F) {
	for _, m := range malformed {
		f.Add([]byte(m.body))
	}
	for _, l := range literals {
		f.Add([]byte(l.request))
	}
	f.Add([]byte(`{"id": {"a": [1.5e300, "\ud83d\ude00"]}, "command": "x", "properties": {"nb": -0}}`))
	f.Add([]byte(`{"id": -1e400, "command": "x", "properties": {"f": 1E-400, "s": "Infinity"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, derr := DecodeRequest(data)
		rep := OK(Field{"properties", req.Properties})
		if derr != nil {
			if derr.Errno != InvalidJSON && derr.Errno != MessageError {
				t.Fatalf("DecodeRequest(%q) errno = %d", data, derr.Errno)
			}
			rep = Fail(derr)
		}
		out, err := rep.Render(req.ID, time.Now())
		if err != nil {
			t.Fatalf("Render after DecodeRequest(%q): %v", data, err)
		}
		if !json.Valid(pyToJSON(out)) {
			t.Fatalf("Render after DecodeRequest(%q) = %q, not JSON", data, out)
		}
		for k := range req.Properties {
			req.String(k)
			req.Int(k)
			req.Float(k)
			req.Bool(k)
			req.Strings(k)
		}
	})
}

// pyToJSON makes JSON as Python reads it into JSON: Circus's replies, like
// ours, write a float beyond float64 (an id of 1e400) as Infinity. This is
// for checks: it also replaces the word inside strings, which stay valid.
func pyToJSON(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("Infinity"), []byte("0"))
	return bytes.ReplaceAll(b, []byte("NaN"), []byte("0"))
}

// frameSeeds are peer byte streams (after the handshake) that reach each
// of guardConn's paths.
func frameSeeds() [][]byte {
	frame := zmtpguard.AppendFrame
	long := func(flags byte, size uint64) []byte {
		return binary.BigEndian.AppendUint64([]byte{flags | zmtpguard.FlagLong}, size)
	}
	list := []byte(`{"id": "a1", "command": "list", "properties": {}}`)
	big := bytes.Repeat([]byte("x"), 1500)
	ping := frame(nil, zmtpguard.FlagCommand, []byte("\x04PING\x00\x0a"))
	return [][]byte{
		frame(nil, 0, list),
		frame(frame(nil, zmtpguard.FlagMore, nil), 0, list),                                         // REQ's delimiter
		frame(frame(frame(nil, zmtpguard.FlagMore, list), zmtpguard.FlagMore, nil), 0, []byte("y")), // 3 frames
		frame(frame(nil, 0, []byte(`{"command": "x", "msg_type": "cast"}`)), 0, []byte("not json")),
		frame(nil, 0, big),
		frame(frame(frame(nil, zmtpguard.FlagMore, big[:700]), zmtpguard.FlagMore, big[:700]), 0, list),
		append(ping, frame(nil, 0, list)...),
		frame(nil, zmtpguard.FlagCommand|zmtpguard.FlagMore, []byte("\x04PING")),
		append(frame(nil, zmtpguard.FlagMore, nil), ping...),
		long(0, 1<<62),
		long(0, 1<<64-1),
		long(zmtpguard.FlagMore, 1<<64-16),
		append(frame(nil, zmtpguard.FlagMore, []byte("ab")), long(0, 1<<64-33)...),
		long(zmtpguard.FlagCommand, 1<<40),
		append(long(0, 300), big[:10]...), // a body cut short
		{zmtpguard.FlagLong, 0, 0},        // a header cut short
		bytes.Repeat([]byte{zmtpguard.FlagMore, 0}, 600),
	}
}

// FuzzGuardConn feeds a peer's bytes, after a real handshake, through
// guardConn into zmq4's reader over a socket pair, and checks what zmq4
// returns against zmtpModel: messages within the limit arrive unchanged,
// oversized ones are reported by number with their declared size, a frame
// the guard must refuse ends the connection with errInboundTooLarge, and
// no buffer is sized by a declared but unsent length. The limit varies
// with the input, from 64 bytes (a READY command fits) up.
func FuzzGuardConn(f *testing.F) {
	for i, s := range frameSeeds() {
		f.Add(uint16(i*97), s)
	}
	f.Fuzz(func(t *testing.T, lim uint16, data []byte) {
		limit := 64 + uint64(lim)
		want := zmtpModel(data, limit)
		var before runtime.MemStats
		runtime.ReadMemStats(&before)
		got, gc := readThroughGuard(t, limit, data)
		var after runtime.MemStats
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64*uint64(len(data))+4*limit+1<<20 {
			t.Errorf("reading %d bytes with a limit of %d allocated %d bytes", len(data), limit, grew)
		}
		var n uint64 // user messages seen
		for i, w := range want.msgs {
			if i == len(got.msgs) {
				break
			}
			g := got.msgs[i]
			if w.cmd {
				if g.Type != zmq4.CmdMsg {
					t.Fatalf("message %d: zmq4 returned a user message, want a command", i)
				}
				continue
			}
			if g.Type != zmq4.UsrMsg {
				t.Fatalf("message %d: zmq4 returned a command, want a user message", i)
			}
			size, big := g.oversized, g.big
			switch {
			case big != w.big:
				t.Fatalf("message %d (user message %d): oversized = %v, want %v (cost %d, limit %d)", i, n, big, w.big, w.cost, limit)
			case big && size != w.size:
				t.Fatalf("message %d: reported size %d, want %d", i, size, w.size)
			case big && len(g.Frames) == 0:
				t.Fatalf("message %d: oversized message with no frame", i)
			case !big && !equalFrames(g.Frames, w.frames):
				t.Fatalf("message %d: zmq4 got %q, want %q", i, g.Frames, w.frames)
			}
			n++
		}
		switch {
		case len(got.msgs) < len(want.msgs) && !want.lastCmd(len(got.msgs)):
			t.Fatalf("zmq4 returned %d messages then %v, want %d", len(got.msgs), got.err, len(want.msgs))
		case len(got.msgs) > len(want.msgs):
			t.Fatalf("zmq4 returned %d messages, want %d", len(got.msgs), len(want.msgs))
		case len(got.msgs) == len(want.msgs) && want.tooLarge != errors.Is(got.err, errInboundTooLarge):
			t.Fatalf("the stream ended with %v; want too large: %v", got.err, want.tooLarge)
		}
		if ctl := gc.TakeControl(); zmtpguard.CompleteFrames(ctl) != len(ctl) {
			t.Fatalf("TakeControl = %q, not whole frames", ctl)
		}
	})
}

// received is what zmq4 returned for one stream: its messages, each with
// what guardConn said of it, and the error that ended it.
type received struct {
	opened bool // the handshake succeeded
	msgs   []receivedMsg
	err    error
}

type receivedMsg struct {
	zmq4.Msg
	big       bool
	oversized uint64
}

// readThroughGuard does a DEALER's handshake with a ROUTER on the other
// end of a socket pair whose reads go through a guardConn, writes data,
// shuts down the write side and returns what the ROUTER's RecvMsg gave
// until it failed.
func readThroughGuard(t *testing.T, limit uint64, data []byte) (received, *guardConn) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	srv, cli := fileConn(t, fds[0]), fileConn(t, fds[1])
	defer srv.Close()
	defer cli.Close()
	gc := newGuardConn(srv, int(limit))
	result := make(chan received, 1)
	go func() {
		var r received
		defer func() { result <- r }()
		zc, err := zmq4.Open(gc, null.Security(), zmq4.Router, nil, true, nil)
		if err != nil {
			r.err = err
			return
		}
		r.opened = true
		gc.Divert()
		var n uint64
		for {
			msg, err := zc.RecvMsg()
			if err != nil {
				r.err = err
				return
			}
			m := receivedMsg{Msg: msg}
			if msg.Type == zmq4.UsrMsg {
				m.oversized, m.big = gc.oversized(n)
				n++
			}
			r.msgs = append(r.msgs, m)
		}
	}()
	// A deadline, lest a ROUTER that failed its side leave this one waiting.
	cli.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := zmq4.Open(cli, null.Security(), zmq4.Dealer, zmq4.SocketIdentity("fuzz"), false, nil); err != nil {
		t.Fatalf("handshake (DEALER): %v", err)
	}
	cli.SetDeadline(time.Time{})
	// The ROUTER may stop reading before the end (a frame too large): then
	// closing its side ends this write.
	written := make(chan struct{})
	go func() {
		defer close(written)
		if _, err := cli.Write(data); err == nil {
			cli.(*net.UnixConn).CloseWrite()
		}
	}()
	r := <-result
	if !r.opened {
		t.Fatalf("handshake (ROUTER): %v", r.err)
	}
	srv.Close()
	<-written
	return r, gc
}

func equalFrames(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// model is what a peer's bytes after the handshake come to by ZMTP 3.0
// and guardConn's documented contract, computed independently of it.
type model struct {
	msgs     []modelMsg // whole messages, in order
	tooLarge bool       // after them, a frame the guard refuses
	clean    bool       // the bytes end where a message does
}

type modelMsg struct {
	frames [][]byte // the bodies of its frames
	cmd    bool     // some frame is a command: zmq4 returns or refuses it
	size   uint64   // body bytes of its user frames
	cost   uint64   // size plus frameOverhead per user frame, saturated
	big    bool     // cost went over the limit
}

// lastCmd reports whether message i is a command, after which zmq4 may
// end the stream (a malformed command is its error).
func (m model) lastCmd(i int) bool { return i < len(m.msgs) && m.msgs[i].cmd }

func zmtpModel(data []byte, limit uint64) model {
	var m model
	var cur modelMsg
	started := false
	for {
		if len(data) < 2 {
			m.clean = len(data) == 0 && !started
			return m
		}
		flags, size, hdr := data[0], uint64(data[1]), 2
		if flags&zmtpguard.FlagLong != 0 {
			if len(data) < 9 {
				return m
			}
			size, hdr = binary.BigEndian.Uint64(data[1:9]), 9
		}
		started = true
		if flags&zmtpguard.FlagCommand != 0 {
			if size > limit {
				m.tooLarge = true
				return m
			}
			cur.cmd = true
		} else {
			if size > discardFactor*limit {
				m.tooLarge = true
				return m
			}
			cur.size += size
			cur.cost = min(cur.cost+size+frameOverhead, 1<<63)
			cur.big = cur.big || cur.cost > limit
		}
		body := uint64(len(data) - hdr)
		if flags&(zmtpguard.FlagCommand|zmtpguard.FlagMore) == 0 && cur.big {
			// The guard ends an oversized message at its last frame's
			// header: it drops the body, and need not wait for it.
			m.msgs = append(m.msgs, cur)
			if body < size {
				return m
			}
			data = data[hdr+int(size):]
			cur, started = modelMsg{}, false
			continue
		}
		if body < size {
			return m
		}
		cur.frames = append(cur.frames, data[hdr:hdr+int(size)])
		data = data[hdr+int(size):]
		if flags&zmtpguard.FlagMore == 0 {
			m.msgs = append(m.msgs, cur)
			cur, started = modelMsg{}, false
		}
	}
}

// FuzzServer sends a peer's bytes, after a real handshake, to a Server on
// 127.0.0.1 with a 1 KiB limit. When they are whole user messages it
// checks that each gets one reply of the kind zmtpModel says (the echo,
// "too large", or another error; none for a cast), and that the
// connection then still answers; whatever they are, another client is
// still served afterwards.
func FuzzServer(f *testing.F) {
	for _, s := range frameSeeds() {
		f.Add(s)
	}
	h := HandlerFunc(func(ctx context.Context, req Request) Reply { return OK(Field{"command", req.Command}) })
	s := serve(f, h, ServerOptions{MaxMessage: 1 << 10, Logger: discardLogger()})
	other := dial(f, s.Addr())
	probe := zmtpguard.AppendFrame(nil, 0, []byte(`{"id": "probe", "command": "probe"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		want := zmtpModel(data, 1<<10)
		p := dialRaw(t, s)
		replies, known := expectReplies(want)
		written := make(chan struct{})
		go func() {
			defer close(written)
			p.nc.Write(data)
			if known {
				p.nc.Write(probe)
			}
		}()
		if known {
			if got := readReplies(t, p, replies.total()); got != replies {
				t.Fatalf("replies %+v, want %+v", got, replies)
			}
		}
		p.nc.Close()
		<-written
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := other.Call(ctx, "probe", nil); err != nil {
			t.Fatalf("another client's call afterwards: %v", err)
		}
	})
}

// replyCounts counts replies by kind.
type replyCounts struct{ ok, tooLarge, other int }

func (c replyCounts) total() int { return c.ok + c.tooLarge + c.other }

// expectReplies returns the replies that the Server owes for the stream
// want models, when it ends cleanly with user messages only (a command
// may end it, a cut message leaves the Server waiting).
func expectReplies(want model) (replyCounts, bool) {
	var c replyCounts
	if !want.clean || want.tooLarge {
		return c, false
	}
	for _, m := range want.msgs {
		frames := m.frames
		if len(frames) >= 2 && len(frames[0]) == 0 {
			frames = frames[1:]
		}
		switch {
		case m.cmd:
			return c, false
		case m.big:
			c.tooLarge++
		case len(frames) != 1:
			c.other++
		default:
			req, err := DecodeRequest(frames[0])
			switch {
			case err != nil:
				c.other++
			case !req.IsCast():
				c.ok++
			}
		}
	}
	return c, true
}

// readReplies reads replies until it has n and the probe's, which it does
// not count. Requests are handled concurrently: replies come in any order.
func readReplies(t *testing.T, p *rawPeer, n int) replyCounts {
	t.Helper()
	var c replyCounts
	p.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for probed := false; c.total() < n || !probed; {
		msg, err := p.zc.RecvMsg()
		if err != nil {
			t.Fatalf("after replies %+v of %d and the probe's: %v", c, n, err)
		}
		if msg.Type != zmq4.UsrMsg {
			continue
		}
		if len(msg.Frames) > 2 || len(msg.Frames) == 2 && len(msg.Frames[0]) != 0 {
			t.Fatalf("reply %q: want [reply] or [\"\", reply]", msg.Frames)
		}
		body := msg.Frames[len(msg.Frames)-1]
		var r struct {
			Status string          `json:"status"`
			Reason string          `json:"reason"`
			ID     json.RawMessage `json:"id"`
		}
		if err := json.Unmarshal(pyToJSON(body), &r); err != nil || r.Status == "" {
			t.Fatalf("reply %q: not a reply (%v)", msg.Frames, err)
		}
		switch {
		case !probed && string(r.ID) == `"probe"` && r.Status == "ok":
			probed = true
		case r.Status == "ok":
			c.ok++
		case strings.Contains(r.Reason, "more than the limit"):
			c.tooLarge++
		default:
			c.other++
		}
		if c.total() > n {
			t.Fatalf("replies %+v, want %d and the probe's", c, n)
		}
	}
	return c
}
