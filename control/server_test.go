package control

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/zmtpguard"
)

func TestClientRoundTrip(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{})
	c := dial(t, s.Addr())
	ctx := context.Background()

	raw, err := c.Call(ctx, "list", nil)
	if err != nil {
		t.Fatalf("Call(list) = %v", err)
	}
	if got := withoutTime(raw); !strings.HasPrefix(got, `{"status": "ok", "time": T, "watchers": ["circusd-stats", "sleeper", "web srv"], "id": "`) {
		t.Errorf("Call(list) = %s", raw)
	}
	raw, err = c.Call(ctx, "status", map[string]any{"name": "sleeper"})
	if err != nil {
		t.Fatalf("Call(status sleeper) = %v, want success (the status-with-name quirk)", err)
	}
	if got := replyFields(t, raw)["status"]; got != "active" {
		t.Errorf("Call(status sleeper) status = %v, want active", got)
	}
	raw, err = c.Call(ctx, "echo", map[string]any{"name": "wéb", "nb": 3, "f": 0.5, "keys": []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `"properties": {"f": 0.5, "keys": ["a"], "name": "w\u00e9b", "nb": 3}`; !bytes.Contains(raw, []byte(want)) {
		t.Errorf("Call(echo) = %s, want it to contain %s", raw, want)
	}

	for _, tc := range []struct {
		command string
		errno   Errno
		reason  string
	}{
		{"incr", MessageError, "message invalid 'name' is missing"},
		{"fail", CommandError, "it failed"},
		{"nope", UnknownCommand, "unknown command: 'nope'"},
	} {
		raw, err := c.Call(ctx, tc.command, nil)
		var ce *CallError
		if !errors.As(err, &ce) {
			t.Fatalf("Call(%s) = %s, %v; want a *CallError", tc.command, raw, err)
		}
		if ce.Errno != tc.errno || ce.Reason != tc.reason {
			t.Errorf("Call(%s) = errno %d %q, want errno %d %q", tc.command, ce.Errno, ce.Reason, tc.errno, tc.reason)
		}
	}
}

func TestConcurrentClients(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{})
	var wg sync.WaitGroup
	errs := make(chan error, 10*50)
	for i := range 10 {
		c := dial(t, s.Addr())
		wg.Go(func() {
			var inner sync.WaitGroup
			for j := range 50 {
				inner.Go(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					defer cancel()
					want := fmt.Sprintf("c%d-%d", i, j)
					raw, err := c.Call(ctx, "echo", map[string]any{"v": want})
					if err != nil {
						errs <- err
						return
					}
					if !bytes.Contains(raw, []byte(`{"v": "`+want+`"}`)) {
						errs <- fmt.Errorf("reply %s does not echo %s", raw, want)
					}
				})
			}
			inner.Wait()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A Handle that blocks delays no other request, on its connection or another.
func TestSlowHandleDoesNotBlock(t *testing.T) {
	t.Parallel()
	h := newTestHandler()
	s := serve(t, h, ServerOptions{})
	c1 := dial(t, s.Addr())
	c2 := dial(t, s.Addr())

	blocked := make(chan error, 1)
	go func() {
		_, err := c1.Call(context.Background(), "block", nil)
		blocked <- err
	}()
	select {
	case <-h.started:
	case <-time.After(5 * time.Second):
		t.Fatal("block never reached the handler")
	}
	for _, c := range []*Client{c1, c2} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		start := time.Now()
		_, err := c.Call(ctx, "list", nil)
		cancel()
		if err != nil {
			t.Fatalf("Call(list) while another request blocks = %v", err)
		}
		t.Logf("list while a request blocks: %v", time.Since(start))
	}
	close(h.gate)
	if err := <-blocked; err != nil {
		t.Errorf("Call(block) = %v", err)
	}
}

func TestMalformedInputs(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{})
	p := dialRaw(t, s)
	check := func(name string, frames [][]byte, wantFrames int, errno Errno, reason string) {
		t.Helper()
		got := p.recv()
		if len(got) != wantFrames {
			t.Fatalf("%s: reply has %d frames, want %d", name, len(got), wantFrames)
		}
		m := replyFields(t, got[len(got)-1])
		if m["status"] != "error" || m["errno"] != float64(errno) || m["reason"] != reason {
			t.Errorf("%s: reply %s, want errno %d %q", name, got[len(got)-1], errno, reason)
		}
		// And the server keeps serving this connection.
		p.send([]byte(`{"id": "after", "command": "list"}`))
		if r := p.recv(); !bytes.Contains(r[0], []byte(`"status": "ok"`)) {
			t.Errorf("%s: list afterwards = %s", name, r[0])
		}
	}
	for _, tc := range malformed {
		p.send([]byte(tc.body))
		check(tc.name, nil, 1, tc.errno, tc.reason)
	}
	p.send([]byte(`{"command": "list"}`), []byte("x"), []byte("y"))
	check("3 frames", nil, 1, MessageError, "invalid message: 3 frames")
	p.send(nil, []byte(`{"command": "list"}`), []byte("y"))
	check("delimiter and 2 frames", nil, 2, MessageError, "invalid message: 3 frames")
	big := bytes.Repeat([]byte("x"), 2<<20)
	p.send(big)
	check("2 MiB frame", nil, 1, MessageError, fmt.Sprintf("invalid message: %d bytes, more than the limit of %d", 2<<20, 1<<20))
	p.send([]byte(`{"command": "list", "id": "`), big[:600<<10], big[:600<<10])
	check("1.2 MiB in 3 frames", nil, 1, MessageError,
		fmt.Sprintf("invalid message: %d bytes, more than the limit of %d", 27+2*(600<<10), 1<<20))

	// A frame declaring more than 16 MiB closes the connection.
	hdr := []byte{zmtpguard.FlagLong, 0, 0, 0, 0, 0x10, 0, 0, 1}
	if _, err := p.nc.Write(hdr); err != nil {
		t.Fatal(err)
	}
	p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := p.zc.RecvMsg(); err == nil {
		t.Errorf("after a 256 MiB frame header, RecvMsg() = nil error, want the connection closed")
	}
	// Others are still served.
	c := dial(t, s.Addr())
	if _, err := c.Call(context.Background(), "list", nil); err != nil {
		t.Errorf("Call(list) after a hostile peer = %v", err)
	}
}

// A peer with an empty delimiter frame (a REQ socket) gets one back.
func TestDelimitedRequest(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{})
	p := dialRaw(t, s)
	p.send(nil, []byte(`{"id": "r1", "command": "status", "properties": {"name": "x"}}`))
	got := p.recv()
	if len(got) != 2 || len(got[0]) != 0 {
		t.Fatalf("reply frames = %q, want [\"\", reply]", got)
	}
	if want := `{"status": "active", "time": T, "id": "r1"}`; withoutTime(got[1]) != want {
		t.Errorf("reply = %s, want %s", got[1], want)
	}
}

// Silent and garbage TCP clients do not delay anyone else's reply
// (reference/go-deps.md §1: zmq4's ROUTER took 7.5s here).
func TestSilentAndGarbageClients(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{})
	addr := strings.TrimPrefix(s.Addr(), "tcp://")
	for range 3 {
		silent, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { silent.Close() })
	}
	garbage, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { garbage.Close() })
	garbage.Write([]byte("GET / HTTP/1.0\r\n\r\n"))
	half, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { half.Close() })
	half.Write([]byte{0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3}) // a greeting start, then nothing

	start := time.Now()
	c := dial(t, s.Addr())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Call(ctx, "list", nil); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("dial + list with 3 silent, 1 garbage, 1 half-greeting client: %v", took)
	if took > time.Second {
		t.Errorf("dial + list took %v, want well under the 5s handshake timeout", took)
	}
}

func TestHandshakeTimeout(t *testing.T) {
	t.Parallel()
	s := serve(t, newTestHandler(), ServerOptions{HandshakeTimeout: 100 * time.Millisecond})
	silent, err := net.Dial("tcp", strings.TrimPrefix(s.Addr(), "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	// The server greets, then closes when the deadline passes: read to EOF.
	buf := make([]byte, 128)
	for {
		if _, err := silent.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatal("a silent client was not disconnected after the handshake timeout")
			}
			break
		}
	}
}

func TestCast(t *testing.T) {
	t.Parallel()
	h := newTestHandler()
	s := serve(t, h, ServerOptions{})
	p := dialRaw(t, s)
	p.send([]byte(`{"id": "k1", "command": "list", "msg_type": "cast"}`))
	select {
	case req := <-h.casts:
		if req.Command != "list" {
			t.Errorf("cast command = %q, want list", req.Command)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("cast never reached the handler")
	}
	// The next reply on the connection is the call's, not the cast's.
	p.send([]byte(`{"id": "k2", "command": "list"}`))
	if got := p.recv(); !bytes.Contains(got[0], []byte(`"id": "k2"`)) {
		t.Errorf("reply after a cast = %s, want the k2 reply", got[0])
	}

	c := dial(t, s.Addr())
	if err := c.Cast(context.Background(), "incr", map[string]any{"name": "x"}); err != nil {
		t.Fatal(err)
	}
	select {
	case req := <-h.casts:
		if req.Command != "incr" || !req.Has("name") {
			t.Errorf("Client.Cast arrived as %+v", req)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Client.Cast never reached the handler")
	}
}

func TestIPC(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ctl.sock")
	// A stale socket file, as a killed arbiter leaves behind.
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()

	s, err := Listen("ipc://"+path, newTestHandler(), ServerOptions{})
	if err != nil {
		t.Fatalf("Listen over a stale socket file: %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("socket file mode = %o, want 600", mode)
	}
	if _, err := Listen("ipc://"+path, newTestHandler(), ServerOptions{}); err == nil {
		t.Errorf("a second Listen on a live socket succeeded")
	}
	c := dial(t, "ipc://"+path)
	if _, err := c.Call(context.Background(), "list", nil); err != nil {
		t.Errorf("Call(list) over ipc = %v", err)
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v, want it gone", err)
	}
}

func TestListenRefusesRemote(t *testing.T) {
	t.Parallel()
	for _, ep := range []string{"tcp://0.0.0.0:0", "tcp://*:0", "udp://127.0.0.1:1"} {
		if s, err := Listen(ep, newTestHandler(), ServerOptions{}); err == nil {
			s.Close()
			t.Errorf("Listen(%q) succeeded, want an error", ep)
		}
	}
	s, err := Listen("tcp://*:0", newTestHandler(), ServerOptions{AllowRemote: true})
	if err != nil {
		t.Fatalf("Listen(tcp://*:0, AllowRemote) = %v", err)
	}
	s.Close()
}

// Close cancels Handle calls in flight and waits for them; their clients
// see the connection end.
func TestCloseWithCallsInFlight(t *testing.T) {
	t.Parallel()
	h := newTestHandler()
	s, err := Listen("tcp://127.0.0.1:0", h, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := dial(t, s.Addr())
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := c.Call(context.Background(), "block", nil)
			errs <- err
		}()
	}
	for range 5 {
		select {
		case <-h.started:
		case <-time.After(5 * time.Second):
			t.Fatal("block calls never reached the handler")
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		select {
		case err := <-errs:
			if err == nil {
				t.Errorf("Call(block) across Close = nil error")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a call in flight did not end after Close")
		}
	}
	if _, err := c.Call(context.Background(), "list", nil); err == nil {
		t.Errorf("Call after the server closed = nil error")
	}
}

func TestClientClose(t *testing.T) {
	t.Parallel()
	h := newTestHandler()
	s := serve(t, h, ServerOptions{})
	c, err := Dial(s.Addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "block", nil)
		errc <- err
	}()
	<-h.started
	c.Close()
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Errorf("Call across Client.Close = %v, want ErrClosed", err)
	}
	if _, err := c.Call(context.Background(), "list", nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Call after Client.Close = %v, want ErrClosed", err)
	}
	close(h.gate)
	if _, err := Dial("tcp://127.0.0.1:1", time.Second); err == nil {
		t.Errorf("Dial to a closed port succeeded")
	}
}

// Shutdown sends the reply of a command still running before it closes
// (quit's, say), and gives up at its deadline with ctx.Err().
func TestShutdown(t *testing.T) {
	t.Parallel()
	for _, finish := range []bool{true, false} {
		h := newTestHandler()
		s, err := Listen("tcp://127.0.0.1:0", h, ServerOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, s.Addr())
		replied := make(chan error, 1)
		go func() {
			_, err := c.Call(context.Background(), "block", nil)
			replied <- err
		}()
		<-h.started
		if finish {
			close(h.gate)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err = s.Shutdown(ctx)
		cancel()
		if finish && err != nil {
			t.Errorf("Shutdown after the command finished = %v, want nil", err)
		}
		if !finish && !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown with a command still running = %v, want %v", err, context.DeadlineExceeded)
		}
		if finish {
			// The reply was written before Shutdown returned; the
			// client's reader may not have taken it yet, so no Close
			// before it has (seen under load: "control client closed").
			if err := <-replied; err != nil {
				t.Errorf("Call(block) through Shutdown = %v, want its reply", err)
			}
			c.Close()
			continue
		}
		c.Close() // ends the Call still waiting
		<-replied
	}
}
