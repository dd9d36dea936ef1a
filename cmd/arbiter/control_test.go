package main_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// ctlArbiter is an arbiter binary and a Go client on its control endpoint.
type ctlArbiter struct {
	*arbiterProc
	dir, ini, endpoint string
	c                  *control.Client
}

// startCtl writes ini (see writeINI) as dir/circus.ini, starts the arbiter
// on it and waits until its control endpoint answers.
func startCtl(t *testing.T, dir, ini string) *ctlArbiter {
	t.Helper()
	path := filepath.Join(dir, "circus.ini")
	writeINI(t, path, ini)
	a := &ctlArbiter{arbiterProc: startArbiter(t, path), dir: dir, ini: path, endpoint: controlEndpoint(path)}
	waitFor(t, "the control endpoint", 20*time.Second, func() bool {
		if a.c == nil {
			c, err := control.Dial(a.endpoint, time.Second)
			if err != nil {
				return false
			}
			a.c = c
			t.Cleanup(func() { c.Close() })
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := a.c.Call(ctx, "list", nil)
		return err == nil
	})
	return a
}

// call sends command and returns the reply; an error reply fails the test.
func (a *ctlArbiter) call(t *testing.T, command string, props map[string]any) json.RawMessage {
	t.Helper()
	rep, err := a.try(command, props)
	if err != nil {
		t.Fatalf("%s %v: %v (reply %s)", command, props, err, rep)
	}
	return rep
}

// try sends command and returns the reply and the error of an error reply.
func (a *ctlArbiter) try(command string, props map[string]any) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return a.c.Call(ctx, command, props)
}

// pids returns the pids `list NAME` reports.
func (a *ctlArbiter) pids(t *testing.T, name string) []int {
	t.Helper()
	var r struct{ Pids []int }
	if err := json.Unmarshal(a.call(t, "list", map[string]any{"name": name}), &r); err != nil {
		t.Fatal(err)
	}
	return r.Pids
}

// status returns the state `status NAME` reports.
func (a *ctlArbiter) status(t *testing.T, name string) string {
	t.Helper()
	var r struct{ Status string }
	if err := json.Unmarshal(a.call(t, "status", map[string]any{"name": name}), &r); err != nil {
		t.Fatal(err)
	}
	return r.Status
}

// watchers returns the names `list` reports.
func (a *ctlArbiter) watchers(t *testing.T) []string {
	t.Helper()
	var r struct{ Watchers []string }
	if err := json.Unmarshal(a.call(t, "list", nil), &r); err != nil {
		t.Fatal(err)
	}
	return r.Watchers
}

// waitPids waits until watcher name is active with n workers, all alive,
// and returns their pids.
func (a *ctlArbiter) waitPids(t *testing.T, name string, n int) []int {
	t.Helper()
	var ps []int
	waitFor(t, fmt.Sprintf("watcher %s active with %d workers", name, n), 20*time.Second, func() bool {
		ps = a.pids(t, name)
		if len(ps) != n || a.status(t, name) != "active" {
			return false
		}
		for _, p := range ps {
			if gone(p) {
				return false
			}
		}
		return true
	})
	return ps
}

func allGone(pids []int) bool {
	for _, p := range pids {
		if !gone(p) {
			return false
		}
	}
	return true
}

func sameSet(a, b []int) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func disjoint(a, b []int) bool {
	for _, p := range a {
		if slices.Contains(b, p) {
			return false
		}
	}
	return true
}

// zmqPeer is a Python process holding libzmq sockets on the control
// endpoint, driven one operation a line: a DEALER set up exactly as
// Circus's CircusClient sets up its own (identity uuid4 hex, LINGER 0), and
// a REQ socket.
type zmqPeer struct {
	t      *testing.T
	in     io.WriteCloser
	lines  chan string
	stderr *testproc.Buffer
}

const zmqPeerScript = `import base64, json, sys, uuid, zmq
ctx = zmq.Context.instance()
dealer = ctx.socket(zmq.DEALER)
dealer.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
dealer.setsockopt(zmq.LINGER, 0)
dealer.connect(sys.argv[1])
req = ctx.socket(zmq.REQ)
req.setsockopt(zmq.LINGER, 0)
req.connect(sys.argv[1])
socks = {"dealer": dealer, "req": req}
for line in sys.stdin:
    op = json.loads(line)
    s = socks[op["sock"]]
    if op["op"] == "send":
        s.send_multipart([base64.b64decode(f) for f in op["frames"]])
        print(json.dumps({"sent": True}), flush=True)
    elif s.poll(op["timeout_ms"]):
        frames = s.recv_multipart()
        print(json.dumps({"frames": [base64.b64encode(f).decode() for f in frames]}), flush=True)
    else:
        print(json.dumps({"timeout": True}), flush=True)
`

func startZMQPeer(t *testing.T, dir, endpoint string) *zmqPeer {
	t.Helper()
	script := filepath.Join(dir, "peer.py")
	if err := os.WriteFile(script, []byte(zmqPeerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(systemPython, script, endpoint)
	p := &zmqPeer{t: t, lines: make(chan string, 16), stderr: &testproc.Buffer{}}
	cmd.Stderr = p.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.in = in
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() {
		in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		<-done
		if t.Failed() {
			t.Logf("python peer stderr:\n%s", p.stderr.String())
		}
	})
	return p
}

// do sends one operation and returns the line it printed.
func (p *zmqPeer) do(op map[string]any, wait time.Duration) map[string]json.RawMessage {
	p.t.Helper()
	b, _ := json.Marshal(op)
	if _, err := p.in.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("python peer: %v\n%s", err, p.stderr.String())
	}
	select {
	case line, ok := <-p.lines:
		if !ok {
			p.t.Fatalf("python peer exited:\n%s", p.stderr.String())
		}
		var r map[string]json.RawMessage
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			p.t.Fatalf("python peer printed %q: %v", line, err)
		}
		return r
	case <-time.After(wait):
		p.t.Fatalf("python peer silent for %v after %s\n%s", wait, b, p.stderr.String())
		return nil
	}
}

// send sends one message of frames on sock ("dealer" or "req").
func (p *zmqPeer) send(sock string, frames ...string) {
	p.t.Helper()
	enc := make([]string, len(frames))
	for i, f := range frames {
		enc[i] = base64.StdEncoding.EncodeToString([]byte(f))
	}
	p.do(map[string]any{"op": "send", "sock": sock, "frames": enc}, 20*time.Second)
}

// recv returns the next message received on sock, failing the test if
// none comes within 30s.
func (p *zmqPeer) recv(sock string) []string {
	p.t.Helper()
	r := p.do(map[string]any{"op": "recv", "sock": sock, "timeout_ms": 30000}, 40*time.Second)
	if _, ok := r["timeout"]; ok {
		p.t.Fatalf("no reply on %s within 30s", sock)
	}
	var enc []string
	if err := json.Unmarshal(r["frames"], &enc); err != nil {
		p.t.Fatal(err)
	}
	frames := make([]string, len(enc))
	for i, e := range enc {
		b, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			p.t.Fatal(err)
		}
		frames[i] = string(b)
	}
	return frames
}

// exchange sends request as one frame on the DEALER and returns the one
// frame of the reply.
func (p *zmqPeer) exchange(request string) string {
	p.t.Helper()
	p.send("dealer", request)
	frames := p.recv("dealer")
	if len(frames) != 1 {
		p.t.Fatalf("reply to %s: %d frames %q, want 1", request, len(frames), frames)
	}
	return frames[0]
}

var placeholder = regexp.MustCompile(`<(TIME|INT|TEXT)>`)

// wantFrame checks got byte for byte against want, in which <TIME> stands
// for the reply's time (a float, as Python prints one, close to now),
// <INT> for an integer and <TEXT> for the inside of a string. It returns
// the integers, in order. Key order, separators and types are all in the
// comparison.
func wantFrame(t *testing.T, what, got, want string) []int {
	t.Helper()
	var re strings.Builder
	re.WriteString("^")
	var kinds []string
	last := 0
	for _, m := range placeholder.FindAllStringSubmatchIndex(want, -1) {
		re.WriteString(regexp.QuoteMeta(want[last:m[0]]))
		kind := want[m[2]:m[3]]
		kinds = append(kinds, kind)
		switch kind {
		case "TIME":
			re.WriteString(`(-?\d+\.\d+(?:e[+-]\d+)?)`)
		case "INT":
			re.WriteString(`(-?\d+)`)
		case "TEXT":
			re.WriteString(`((?:[^"\\]|\\.)*)`)
		}
		last = m[1]
	}
	re.WriteString(regexp.QuoteMeta(want[last:]) + "$")
	sub := regexp.MustCompile(re.String()).FindStringSubmatch(got)
	if sub == nil {
		t.Errorf("%s: reply\n%s\nwant\n%s", what, got, want)
		return nil
	}
	var ints []int
	for i, kind := range kinds {
		v := sub[i+1]
		switch kind {
		case "TIME":
			f, err := strconv.ParseFloat(v, 64)
			if now := float64(time.Now().UnixNano()) / 1e9; err != nil || f < now-60 || f > now+60 {
				t.Errorf("%s: time %s is not the current time as a float (now %f)", what, v, now)
			}
		case "INT":
			n, _ := strconv.Atoi(v)
			ints = append(ints, n)
		}
	}
	return ints
}

// listeningInode returns the inode of the socket listening on 127.0.0.1:port.
func listeningInode(t *testing.T, port int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == want && f[3] == "0A" {
			return f[9]
		}
	}
	t.Fatalf("nothing listens on 127.0.0.1:%d", port)
	return ""
}

// A libzmq DEALER set up as Circus's CircusClient is, sending Circus's own
// request frames, gets circusd's reply frames byte for byte (reference
// §2.2, §2.7): key order, Python's separators, types, errno, the id echoed
// and the time a float. Malformed input gets an error reply, never silence;
// a message behind an empty delimiter (a REQ socket) gets its reply behind
// one; a cast gets no reply but runs.
func TestControlWireMatchesCircus(t *testing.T) {
	t.Parallel()
	needPyzmq(t)
	dir := t.TempDir()
	port := freePort(t)
	a := startCtl(t, dir, fmt.Sprintf(`[socket:web]
host = 127.0.0.1
port = %d

[watcher:sleeper]
cmd = WORKER sleep
numprocesses = 2

[watcher:Web Srv]
cmd = WORKER serve --fd $(circus.sockets.web)
`, port))
	a.waitPids(t, "sleeper", 2)
	a.waitPids(t, "Web Srv", 1)
	p := startZMQPeer(t, dir, a.endpoint)

	wantFrame(t, "list", p.exchange(`{"id": "a1", "command": "list", "properties": {}}`),
		`{"status": "ok", "time": <TIME>, "watchers": ["sleeper", "web srv"], "id": "a1"}`)
	old := wantFrame(t, "list sleeper", p.exchange(`{"id": "a2", "command": "list", "properties": {"name": "sleeper"}}`),
		`{"status": "ok", "time": <TIME>, "pids": [<INT>, <INT>], "id": "a2"}`)
	wantFrame(t, "status sleeper", p.exchange(`{"id": "a4", "command": "status", "properties": {"name": "sleeper"}}`),
		`{"status": "active", "time": <TIME>, "id": "a4"}`)

	info := wantFrame(t, "restart waiting", p.exchange(`{"id": "b7", "command": "restart", "properties": {"name": "sleeper", "waiting": true}}`),
		`{"status": "ok", "time": <TIME>, "info": {"stopped": [<INT>, <INT>], "started": [<INT>, <INT>], "kept": []}, "id": "b7"}`)
	if len(info) == 4 {
		stopped, started := info[:2], info[2:]
		if !sameSet(stopped, old) {
			t.Errorf("restart: stopped %v, want the workers before it %v", stopped, old)
		}
		if now := a.pids(t, "sleeper"); !sameSet(started, now) || !disjoint(started, old) {
			t.Errorf("restart: started %v; the workers now are %v, before %v", started, now, old)
		}
		if !allGone(old) {
			t.Errorf("restart --waiting answered while an old worker of %v still exists", old)
		}
	}

	wantFrame(t, "incr without name", p.exchange(`{"id": "a14", "command": "incr", "properties": {}}`),
		`{"status": "error", "reason": "message invalid 'name' is missing", "tb": null, "time": <TIME>, "errno": 3, "id": "a14"}`)
	wantFrame(t, "incr waiting", p.exchange(`{"id": "b2", "command": "incr", "properties": {"name": "sleeper", "waiting": true}}`),
		`{"status": "ok", "time": <TIME>, "numprocesses": 3, "id": "b2"}`)
	if n := len(a.pids(t, "sleeper")); n != 3 {
		t.Errorf("after incr --waiting answered 3, list sleeper has %d pids", n)
	}

	fd := wantFrame(t, "listsockets", p.exchange(`{"id": "c1", "command": "listsockets", "properties": {}}`),
		fmt.Sprintf(`{"status": "ok", "time": <TIME>, "sockets": [{"fd": <INT>, "name": "web", "backlog": 2048, "host": "127.0.0.1", "port": %d}], "id": "c1"}`, port))
	if len(fd) == 1 {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", a.cmd.Process.Pid, fd[0]))
		if want := "socket:[" + listeningInode(t, port) + "]"; err != nil || link != want {
			t.Errorf("listsockets fd %d: the arbiter's fd is %q (%v), want the socket listening on port %d, %s", fd[0], link, err, port, want)
		}
	}

	// Malformed requests, each answered.
	for _, tt := range []struct{ name, req, want string }{
		{"not JSON", `{"id": "x", "command"`,
			`{"status": "error", "reason": "json invalid", "tb": null, "time": <TIME>, "errno": 1, "id": null}`},
		{"not JSON at all", `hello`,
			`{"status": "error", "reason": "json invalid", "tb": null, "time": <TIME>, "errno": 1, "id": null}`},
		{"not UTF-8", "{\"id\": \"\xff\", \"command\": \"list\"}",
			`{"status": "error", "reason": "json invalid", "tb": null, "time": <TIME>, "errno": 1, "id": null}`},
		{"an empty frame", "",
			`{"status": "error", "reason": "json invalid", "tb": null, "time": <TIME>, "errno": 1, "id": null}`},
		{"a JSON array", `[{"id": "d1", "command": "list", "properties": {}}]`,
			`{"status": "error", "reason": "message invalid: want a JSON object, got an array", "tb": null, "time": <TIME>, "errno": 3, "id": null}`},
		{"no command", `{"id": "d2", "properties": {}}`,
			`{"status": "error", "reason": "message invalid 'command' is missing", "tb": null, "time": <TIME>, "errno": 3, "id": "d2"}`},
		{"unknown command", `{"id": "d3", "command": "x", "properties": {}}`,
			`{"status": "error", "reason": "unknown command: 'x'", "tb": null, "time": <TIME>, "errno": 2, "id": "d3"}`},
		{"unknown command, not ASCII", `{"id": "d3b", "command": "\u00e9t\u00e9", "properties": {}}`,
			`{"status": "error", "reason": "unknown command: '\u00e9t\u00e9'", "tb": null, "time": <TIME>, "errno": 2, "id": "d3b"}`},
		{"nb a string", `{"id": "d4", "command": "incr", "properties": {"name": "sleeper", "nb": "two"}}`,
			`{"status": "error", "reason": "message invalid 'nb' must be an integer", "tb": null, "time": <TIME>, "errno": 3, "id": "d4"}`},
		{"name a number", `{"id": "d5", "command": "status", "properties": {"name": 5}}`,
			`{"status": "error", "reason": "message invalid 'name' must be a string", "tb": null, "time": <TIME>, "errno": 3, "id": "d5"}`},
		{"properties an array", `{"id": "d6", "command": "list", "properties": []}`,
			`{"status": "error", "reason": "message invalid 'properties' must be an object", "tb": null, "time": <TIME>, "errno": 3, "id": "d6"}`},
		{"unknown watcher", `{"id": "d7", "command": "incr", "properties": {"name": "nosuch"}}`,
			`{"status": "error", "reason": "program nosuch not found", "tb": null, "time": <TIME>, "errno": 3, "id": "d7"}`},
		{"listen", `{"id": "d8", "command": "listen", "properties": {}}`,
			`{"status": "error", "reason": "invalid message. use a pub/sub socket", "tb": null, "time": <TIME>, "errno": 3, "id": "d8"}`},
		{"ipython", `{"id": "d9", "command": "ipython", "properties": {}}`,
			`{"status": "error", "reason": "<TEXT>", "tb": null, "time": <TIME>, "errno": 5, "id": "d9"}`},
		// The id is echoed whatever its type, re-rendered with Python's
		// separators; none is null.
		{"an integer id, no properties", `{"id": 42, "command": "numwatchers"}`,
			`{"status": "ok", "time": <TIME>, "numwatchers": 2, "id": 42}`},
		{"an object id", `{"command":"numwatchers","id":{"a":[1,2.5,"\u00e9",null]}}`,
			`{"status": "ok", "time": <TIME>, "numwatchers": 2, "id": {"a": [1, 2.5, "\u00e9", null]}}`},
		{"no id", `{"command": "numwatchers", "properties": {}}`,
			`{"status": "ok", "time": <TIME>, "numwatchers": 2, "id": null}`},
		{"command in capitals", `{"id": "d10", "command": "NUMWATCHERS", "properties": {}}`,
			`{"status": "ok", "time": <TIME>, "numwatchers": 2, "id": "d10"}`},
	} {
		wantFrame(t, tt.name, p.exchange(tt.req), tt.want)
	}

	// control/peer.go: a message of two frames is answered with errno 3,
	// in one frame; one behind an empty delimiter (as a REQ socket sends)
	// is answered behind an empty delimiter.
	p.send("dealer", `{"id": "e1", "command": "list", "properties": {}}`, `{}`)
	if got := p.recv("dealer"); len(got) != 1 {
		t.Errorf("two-frame message: reply %q, want one frame", got)
	} else {
		wantFrame(t, "two-frame message", got[0],
			`{"status": "error", "reason": "invalid message: 2 frames", "tb": null, "time": <TIME>, "errno": 3, "id": null}`)
	}
	p.send("dealer", "", `{"id": "e2", "command": "status", "properties": {"name": "sleeper"}}`)
	if got := p.recv("dealer"); len(got) != 2 || got[0] != "" {
		t.Errorf("message behind an empty delimiter: reply %q, want an empty frame and the reply", got)
	} else {
		wantFrame(t, "message behind an empty delimiter", got[1], `{"status": "active", "time": <TIME>, "id": "e2"}`)
	}
	p.send("dealer", "", `{"id": "e3", "command": "list", "properties": {}}`, `{}`)
	if got := p.recv("dealer"); len(got) != 2 || got[0] != "" {
		t.Errorf("two frames behind an empty delimiter: reply %q, want an empty frame and the reply", got)
	} else {
		wantFrame(t, "two frames behind an empty delimiter", got[1],
			`{"status": "error", "reason": "invalid message: 3 frames", "tb": null, "time": <TIME>, "errno": 3, "id": null}`)
	}
	// A real REQ socket: its recv returns the reply only if it came
	// behind a delimiter.
	p.send("req", `{"id": "e4", "command": "status", "properties": {"name": "sleeper"}}`)
	if got := p.recv("req"); len(got) != 1 {
		t.Errorf("REQ socket: reply %q, want one frame", got)
	} else {
		wantFrame(t, "REQ socket", got[0], `{"status": "active", "time": <TIME>, "id": "e4"}`)
	}

	// A cast runs but is not answered: the waiting incr cast and the decr
	// after it share the watcher's queue, so a reply to the cast would
	// arrive before the decr's, and the decr's count shows the incr ran.
	p.send("dealer", `{"id": "f1", "command": "incr", "properties": {"name": "sleeper", "waiting": true}, "msg_type": "cast"}`)
	wantFrame(t, "decr after an incr cast", p.exchange(`{"id": "f2", "command": "decr", "properties": {"name": "sleeper", "waiting": true}}`),
		`{"status": "ok", "time": <TIME>, "numprocesses": 3, "id": "f2"}`)
	// And an unknown command cast is not answered either.
	p.send("dealer", `{"id": "f3", "command": "nosuch", "properties": {}, "msg_type": "cast"}`)
	wantFrame(t, "numwatchers after a cast", p.exchange(`{"id": "f4", "command": "numwatchers", "properties": {}}`),
		`{"status": "ok", "time": <TIME>, "numwatchers": 2, "id": "f4"}`)
}

// circusctl runs our circusctl against endpoint, with Circus's syntax
// (global options first), and returns its stdout, stderr and exit code.
func circusctl(t *testing.T, endpoint string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, circusctlBin, append([]string{"--endpoint", endpoint, "--timeout", "30"}, args...)...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("circusctl %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ctlOK runs circusctl and fails the test unless it exits 0.
func ctlOK(t *testing.T, endpoint string, args ...string) string {
	t.Helper()
	out, errOut, code := circusctl(t, endpoint, args...)
	if code != 0 {
		t.Fatalf("circusctl %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// ctlPids parses `circusctl list NAME`: pids separated by commas.
func ctlPids(t *testing.T, endpoint, name string) []int {
	t.Helper()
	out := strings.TrimSpace(ctlOK(t, endpoint, "list", name))
	var ps []int
	if out == "" {
		return ps
	}
	for _, f := range strings.Split(out, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("circusctl list %s printed %q", name, out)
		}
		ps = append(ps, n)
	}
	return ps
}

// procState is the state letter of /proc/PID/stat (R, S, T...).
func procState(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// Our circusctl, with Circus's syntax, drives the arbiter: what each
// command reports is what then happened to the workers.
func TestCircusctlDrivesArbiter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, "[watcher:web]\ncmd = WORKER sleep\nnumprocesses = 2\n\n[watcher:other]\ncmd = WORKER sleep\n")
	ep := a.endpoint
	before := a.waitPids(t, "web", 2)
	a.waitPids(t, "other", 1)

	var incr struct {
		Status       string
		Numprocesses int
	}
	if err := json.Unmarshal([]byte(ctlOK(t, ep, "--json", "incr", "web", "3", "--waiting")), &incr); err != nil || incr.Status != "ok" || incr.Numprocesses != 5 {
		t.Errorf("--json incr web 3 --waiting: %+v (%v), want ok and numprocesses 5", incr, err)
	}
	grown := ctlPids(t, ep, "web")
	if len(grown) != 5 {
		t.Errorf("after incr web 3: list web = %v, want 5 pids", grown)
	}
	for _, p := range before {
		if !slices.Contains(grown, p) {
			t.Errorf("incr replaced worker %d: list web = %v", p, grown)
		}
	}
	if out := strings.TrimSpace(ctlOK(t, ep, "decr", "web", "2", "--waiting")); out != "3" {
		t.Errorf("decr web 2 --waiting printed %q, want 3", out)
	}
	shrunk := ctlPids(t, ep, "web")
	if len(shrunk) != 3 {
		t.Errorf("after decr web 2: list web = %v, want 3 pids", shrunk)
	}
	for _, p := range shrunk {
		if !slices.Contains(grown, p) {
			t.Errorf("decr started worker %d: list web = %v, before %v", p, shrunk, grown)
		}
	}
	for _, p := range grown {
		if !slices.Contains(shrunk, p) && !gone(p) {
			t.Errorf("decr --waiting answered while removed worker %d still exists", p)
		}
	}

	if out := ctlOK(t, ep, "status"); out != "other: active\nweb: active\n" {
		t.Errorf("status printed %q", out)
	}
	if out := ctlOK(t, ep, "status", "web"); out != "active\n" {
		t.Errorf("status web printed %q", out)
	}

	var stats struct {
		Status string
		Name   string
		Info   map[string]map[string]any
	}
	if err := json.Unmarshal([]byte(ctlOK(t, ep, "--json", "stats", "web")), &stats); err != nil {
		t.Fatal(err)
	}
	var statPids []int
	for k, in := range stats.Info {
		pid, _ := strconv.Atoi(k)
		statPids = append(statPids, pid)
		for _, f := range []string{"cpu", "mem", "age"} {
			if _, ok := in[f].(float64); !ok {
				t.Errorf("stats web: worker %s: %s = %v, want a number", k, f, in[f])
			}
		}
		if in["pid"] != float64(pid) {
			t.Errorf("stats web: worker %s has pid %v", k, in["pid"])
		}
	}
	if stats.Status != "ok" || stats.Name != "web" || !sameSet(statPids, shrunk) {
		t.Errorf("stats web: status %q name %q pids %v, want ok, web and %v", stats.Status, stats.Name, statPids, shrunk)
	}

	ctlOK(t, ep, "restart", "web", "--waiting")
	restarted := ctlPids(t, ep, "web")
	if len(restarted) != 3 || !disjoint(restarted, shrunk) || !allGone(shrunk) {
		t.Errorf("restart web --waiting: pids %v -> %v, want 3 new ones and the old gone", shrunk, restarted)
	}

	ctlOK(t, ep, "set", "web", "numprocesses", "1", "--waiting")
	one := ctlPids(t, ep, "web")
	if len(one) != 1 || !slices.Contains(restarted, one[0]) {
		t.Errorf("set web numprocesses 1 --waiting: pids %v -> %v, want one of the old ones", restarted, one)
	}
	if out := ctlOK(t, ep, "options", "web"); !regexp.MustCompile(`(?m)^numprocesses: +1$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^cmd: +\S+testworker sleep$`).MatchString(out) {
		t.Errorf("options web printed:\n%s\nwant numprocesses: 1 and the cmd", out)
	}
	if out := ctlOK(t, ep, "get", "web", "numprocesses", "graceful_timeout"); !regexp.MustCompile(`^numprocesses: +1\ngraceful_timeout: +30\.0\n$`).MatchString(out) {
		t.Errorf("get web numprocesses graceful_timeout printed %q", out)
	}

	// add and rm.
	ctlOK(t, ep, "add", "--start", "extra", worker, "sleep")
	var extra []int
	waitFor(t, "the added watcher's worker", 20*time.Second, func() bool {
		extra = ctlPids(t, ep, "extra")
		return len(extra) == 1
	})
	if out := ctlOK(t, ep, "list"); out != "extra,other,web\n" {
		t.Errorf("list after add printed %q", out)
	}
	ctlOK(t, ep, "rm", "extra", "--waiting")
	if out := ctlOK(t, ep, "list"); out != "other,web\n" {
		t.Errorf("list after rm printed %q", out)
	}
	if !gone(extra[0]) {
		t.Errorf("rm extra --waiting answered while its worker %d still exists", extra[0])
	}

	// signal: SIGSTOP and SIGCONT show in the worker's state.
	pid := one[0]
	ctlOK(t, ep, "signal", "web", "STOP")
	waitFor(t, "the worker to be stopped by SIGSTOP", 10*time.Second, func() bool { return procState(pid) == "T" })
	ctlOK(t, ep, "signal", "web", strconv.Itoa(pid), "SIGCONT")
	waitFor(t, "the worker to run again after SIGCONT", 10*time.Second, func() bool { s := procState(pid); return s != "T" && s != "" })

	// kill: the worker is stopped and replaced.
	ctlOK(t, ep, "kill", "web", strconv.Itoa(pid), "--waiting")
	if !gone(pid) {
		t.Errorf("kill web %d --waiting answered while the worker still exists", pid)
	}
	if now := a.waitPids(t, "web", 1); now[0] == pid {
		t.Errorf("kill web %d: it is still listed", pid)
	}

	// An error reply exits 3, or 0 with --json (which prints it).
	for _, args := range [][]string{{"status", "nosuch"}, {"incr", "nosuch"}, {"get", "web", "nokey"}} {
		out, errOut, code := circusctl(t, ep, args...)
		if code != 3 {
			t.Errorf("circusctl %s: exit %d, want 3\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
		}
	}
	out, _, code := circusctl(t, ep, "--json", "status", "nosuch")
	var e struct {
		Status, Reason string
		Errno          int
	}
	if err := json.Unmarshal([]byte(out), &e); code != 0 || err != nil || e.Status != "error" || e.Errno != 3 || e.Reason != "program nosuch not found" {
		t.Errorf("--json status nosuch: exit %d, printed %q, want exit 0 and the errno 3 reply", code, out)
	}
}

// httpworkerBin builds examples/httpworker once (the testworker's serve
// role cuts its connections on SIGTERM; httpworker drains them).
var httpworkerBin = sync.OnceValues(func() (string, error) {
	out := filepath.Join(filepath.Dir(worker), "httpworker")
	if b, err := exec.Command("go", "build", "-o", out, "../../examples/httpworker").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build httpworker: %w\n%s", err, b)
	}
	return out, nil
})

// Workers serving HTTP on a socket the arbiter holds are restarted,
// reloaded, resized and killed through the control endpoint while a
// request loop runs: no request fails, none is refused.
func TestControlUnderLoadFailsNoRequest(t *testing.T) {
	t.Parallel()
	bin, err := httpworkerBin()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := freePort(t)
	a := startCtl(t, dir, fmt.Sprintf(`[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = %s --fd $(circus.sockets.web) --drain 10s
numprocesses = 4
graceful_timeout = 15
`, port, bin))
	a.waitPids(t, "web", 4)
	url := fmt.Sprintf("http://127.0.0.1:%d/", port)

	const (
		clients  = 8
		minTotal = 3000   // requests at least, however fast the commands are
		maxTotal = 200000 // a bound, whatever happens
	)
	var ok, failed, total atomic.Int64
	var errMu sync.Mutex
	var errs []string
	// commandsDone ends the loop once it made minTotal requests; abort
	// ends it at once, should the test end early.
	commandsDone, abort := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	defer func() {
		close(abort)
		wg.Wait()
	}()
	for range clients {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
			for total.Add(1) <= maxTotal {
				select {
				case <-abort:
					return
				case <-commandsDone:
					if total.Load() > minTotal {
						return
					}
				default:
				}
				resp, err := c.Get(url)
				if err == nil {
					_, err = io.ReadAll(resp.Body)
					resp.Body.Close()
					if err == nil && resp.StatusCode != http.StatusOK {
						err = fmt.Errorf("status %s", resp.Status)
					}
				}
				if err == nil {
					ok.Add(1)
					continue
				}
				failed.Add(1)
				errMu.Lock()
				if len(errs) < 10 {
					errs = append(errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				errMu.Unlock()
			}
		})
	}
	served := func(what string) {
		t.Helper()
		n := ok.Load()
		waitFor(t, "requests served after "+what, 30*time.Second, func() bool { return ok.Load() >= n+50 })
	}
	served("the start")
	steps := []struct {
		command string
		props   map[string]any
		renew   bool // every worker is replaced
		n       int  // workers after it
	}{
		{"restart", map[string]any{"name": "web", "waiting": true}, true, 4},
		{"reload", map[string]any{"name": "web", "waiting": true}, true, 4},
		{"incr", map[string]any{"name": "web", "nb": 2, "waiting": true}, false, 6},
		{"decr", map[string]any{"name": "web", "nb": 2, "waiting": true}, false, 4},
		{"reload", map[string]any{"name": "web", "sequential": true, "waiting": true}, true, 4},
		{"reload", map[string]any{"waiting": true}, true, 4},
		{"kill", map[string]any{"name": "web", "waiting": true}, true, 4},
		{"restart", map[string]any{"waiting": true}, true, 4},
	}
	for i := range 3 * len(steps) {
		step := steps[i%len(steps)]
		what := fmt.Sprintf("%s %v", step.command, step.props)
		before := a.pids(t, "web")
		start := time.Now()
		a.call(t, step.command, step.props)
		after := a.waitPids(t, "web", step.n)
		t.Logf("%s: %v, %d answered and %d failed so far", what, time.Since(start).Round(time.Millisecond), ok.Load(), failed.Load())
		if step.renew && !disjoint(before, after) {
			t.Errorf("%s: workers %v -> %v, want all replaced", what, before, after)
		}
		served(what)
	}
	close(commandsDone)
	wg.Wait()
	t.Logf("request loop: %d answered, %d failed", ok.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed while the workers were replaced, want none; first ones:\n%s", n, strings.Join(errs, "\n"))
	}
}

// A stop that waits out one watcher's graceful_timeout (its worker ignores
// SIGTERM) does not delay a waiting incr on another watcher: the incr's
// reply comes first.
func TestSlowStopDoesNotDelayOtherWatcher(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := startCtl(t, dir, fmt.Sprintf(`[watcher:slow]
cmd = WORKER ignoreterm %s/slow.txt
graceful_timeout = 5

[watcher:fast]
cmd = WORKER sleep
`, dir))
	a.waitPids(t, "slow", 1)
	before := a.waitPids(t, "fast", 1)
	var slowPid, grandchild int
	waitFor(t, "the slow worker's pids", 10*time.Second, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "slow.txt"))
		if err != nil {
			return false
		}
		_, err = fmt.Sscan(string(b), &slowPid, &grandchild)
		return err == nil
	})

	type result struct {
		name  string
		reply json.RawMessage
		err   error
		at    time.Duration
	}
	replies := make(chan result, 2)
	start := time.Now()
	go func() {
		rep, err := a.try("stop", map[string]any{"name": "slow", "waiting": true})
		replies <- result{"stop", rep, err, time.Since(start)}
	}()
	waitFor(t, "the slow watcher to be stopping", 10*time.Second, func() bool { return a.status(t, "slow") == "stopping" })
	go func() {
		rep, err := a.try("incr", map[string]any{"name": "fast", "waiting": true})
		replies <- result{"incr", rep, err, time.Since(start)}
	}()
	first, second := <-replies, <-replies
	t.Logf("%s answered after %v, %s after %v", first.name, first.at.Round(time.Millisecond), second.name, second.at.Round(time.Millisecond))
	if first.name != "incr" {
		t.Errorf("the stop of the slow watcher answered before the incr of the other one: the incr waited for it")
	}
	for _, r := range []result{first, second} {
		if r.err != nil {
			t.Errorf("%s: %v", r.name, r.err)
		}
	}
	if r := map[string]result{first.name: first, second.name: second}["stop"]; r.err == nil {
		wantFrame(t, "stop slow --waiting", string(r.reply), `{"status": "ok", "time": <TIME>, "info": null, "id": "<TEXT>"}`)
	}
	var incr struct{ Numprocesses int }
	if r := map[string]result{first.name: first, second.name: second}["incr"]; json.Unmarshal(r.reply, &incr) != nil || incr.Numprocesses != 2 {
		t.Errorf("incr fast --waiting replied %s, want numprocesses 2", r.reply)
	}
	if now := a.pids(t, "fast"); len(now) != 2 || !slices.Contains(now, before[0]) {
		t.Errorf("fast after incr: %v, want 2 workers including %d", now, before[0])
	}
	// The worker is reaped before the stop completes; its grandchild,
	// killed with the group (or the cgroup) and reaped by the arbiter as
	// an orphan, may still be a zombie when the reply leaves: dead, but
	// not yet gone.
	if !gone(slowPid) || !testproc.DeadOrZombie(grandchild) {
		t.Errorf("stop slow --waiting answered while its worker %d (gone: %v) or grandchild %d (dead: %v) runs",
			slowPid, gone(slowPid), grandchild, testproc.DeadOrZombie(grandchild))
	}
	waitFor(t, "the arbiter to reap the killed grandchild", 10*time.Second, func() bool { return gone(grandchild) })
	if s := a.status(t, "slow"); s != "stopped" {
		t.Errorf("status slow after the stop = %q, want stopped", s)
	}
}

// connRefused reports whether nothing accepts connections on port.
func connRefused(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 2*time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
