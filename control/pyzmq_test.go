package control

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// literalHandler answers each of reference §2.7's requests with its reply.
type literalHandler struct{}

func (literalHandler) Handle(_ context.Context, req Request) Reply {
	for _, l := range literals {
		r, _ := DecodeRequest([]byte(l.request))
		if string(r.ID) == string(req.ID) {
			return l.rep
		}
	}
	return Failf(UnknownCommand, "unknown command: %s", pyQuote(req.Command))
}

// pyClient sends each request with a libzmq socket of the given type
// (Circus's client options: DEALER, identity uuid4 hex, linger 0) and
// returns the reply frames, after checking in Python that each reply is
// exactly what json.dumps writes for the object it holds.
const pyClient = `
import json, sys, uuid, zmq
endpoint, kind, reqfile = sys.argv[1], sys.argv[2], sys.argv[3]
ctx = zmq.Context()
s = ctx.socket(zmq.DEALER if kind == "dealer" else zmq.REQ)
s.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 5000)
s.connect(endpoint)
out = []
for line in open(reqfile, "rb").read().splitlines():
    s.send(line)
    frames = s.recv_multipart()
    assert len(frames) == 1, frames
    body = frames[0].decode()
    assert json.dumps(json.loads(body)) == body, ("not json.dumps output", body)
    out.append(body)
s.close()
ctx.term()
print(json.dumps(out))
`

func runPyClient(t *testing.T, endpoint, kind string, requests []string) []string {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "client.py")
	reqs := filepath.Join(dir, "requests")
	if err := os.WriteFile(script, []byte(pyClient), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(reqs, []byte(strings.Join(requests, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, systemPython, script, endpoint, kind, reqs).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s client.py: %v\n%s", kind, err, stderr)
	}
	var replies []string
	if err := json.Unmarshal(out, &replies); err != nil {
		t.Fatalf("client.py output %q: %v", out, err)
	}
	return replies
}

// Circus's literal request frames, sent by libzmq, get Circus's exact reply
// frames back, the time value aside.
func TestPyzmqLiterals(t *testing.T) {
	t.Parallel()
	needPyzmq(t)
	for _, kind := range []string{"dealer", "req"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			s := serve(t, literalHandler{}, ServerOptions{})
			var reqs []string
			for _, l := range literals {
				reqs = append(reqs, l.request)
			}
			replies := runPyClient(t, s.Addr(), kind, reqs)
			if len(replies) != len(literals) {
				t.Fatalf("got %d replies, want %d", len(replies), len(literals))
			}
			for i, l := range literals {
				if got, want := withoutTime([]byte(replies[i])), withoutTime([]byte(l.reply)); got != want {
					t.Errorf("%s: reply\n %s\nwant\n %s", l.name, replies[i], l.reply)
				}
			}
		})
	}
}

// Malformed requests from libzmq get error replies (circusd sends none for
// most of them) and the connection keeps working.
func TestPyzmqMalformed(t *testing.T) {
	t.Parallel()
	needPyzmq(t)
	s := serve(t, newTestHandler(), ServerOptions{})
	var reqs []string
	for _, m := range malformed {
		if m.body == "" || strings.ContainsRune(m.body, 0xfffd) || !json.Valid([]byte(m.body)) && m.name != "not json" {
			continue // not one line of text
		}
		reqs = append(reqs, m.body)
	}
	reqs = append(reqs, `{"id": "last", "command": "list"}`)
	replies := runPyClient(t, s.Addr(), "dealer", reqs)
	for i, r := range replies[:len(replies)-1] {
		m := replyFields(t, []byte(r))
		if m["status"] != "error" {
			t.Errorf("reply to %s = %s, want an error", reqs[i], r)
		}
	}
	if last := replies[len(replies)-1]; !strings.Contains(last, `"status": "ok"`) {
		t.Errorf("list after malformed requests = %s", last)
	}
}
