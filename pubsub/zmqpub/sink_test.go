package zmqpub

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// pySub is a libzmq SUB run by Debian's python3-zmq: it connects, subscribes
// to the prefixes, and prints each of the first n messages as a JSON list of
// hex frames.
const pySub = `import json, sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 20000)
for p in sys.argv[3:]:
    s.setsockopt(zmq.SUBSCRIBE, p.encode())
s.connect(sys.argv[1])
for _ in range(int(sys.argv[2])):
    print(json.dumps([f.hex() for f in s.recv_multipart()]), flush=True)
s.close()
ctx.term()
`

// startPySub starts a pySub and returns a function that waits for it and
// returns its messages as [topic, body] string pairs.
func startPySub(t *testing.T, endpoint string, n int, prefixes ...string) func() [][]string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "sub.py")
	if err := os.WriteFile(script, []byte(pySub), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	cmd := exec.CommandContext(ctx, systemPython, append([]string{script, endpoint, fmt.Sprint(n)}, prefixes...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start python SUB: %v", err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	return func() [][]string {
		t.Helper()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("python SUB %v: %v\n%s", prefixes, err, errOut.String())
		}
		var msgs [][]string
		for _, line := range splitLines(out.Bytes()) {
			if line == "" {
				continue
			}
			var frames []string
			if err := json.Unmarshal([]byte(line), &frames); err != nil {
				t.Fatalf("python SUB printed %q: %v", line, err)
			}
			var msg []string
			for _, f := range frames {
				b, err := hex.DecodeString(f)
				if err != nil {
					t.Fatal(err)
				}
				msg = append(msg, string(b))
			}
			msgs = append(msgs, msg)
		}
		return msgs
	}
}

// goSub dials endpoint with zmq4's SUB and subscribes to the prefixes.
func goSub(t testing.TB, endpoint string, prefixes ...string) zmq4.Socket {
	t.Helper()
	sub := zmq4.NewSub(context.Background(), zmq4.WithTimeout(10*time.Second))
	if err := sub.Dial(endpoint); err != nil {
		t.Fatalf("SUB Dial %s: %v", endpoint, err)
	}
	for _, p := range prefixes {
		if err := sub.SetOption(zmq4.OptionSubscribe, p); err != nil {
			t.Fatalf("SUB subscribe %q: %v", p, err)
		}
	}
	t.Cleanup(func() { sub.Close() })
	return sub
}

// recvN reads n messages from a zmq4 SUB as [topic, body] string pairs.
func recvN(t testing.TB, sub zmq4.Socket, n int) [][]string {
	t.Helper()
	var msgs [][]string
	for range n {
		m, err := sub.Recv()
		if err != nil {
			t.Fatalf("SUB Recv after %d messages: %v", len(msgs), err)
		}
		var msg []string
		for _, f := range m.Frames {
			msg = append(msg, string(f))
		}
		msgs = append(msgs, msg)
	}
	return msgs
}

// oneOfEachKind is a stream with every event kind, for watchers "web",
// "webapp" (which a "watcher.web." subscriber must not get) and "Web Srv",
// and the arbiter's own.
func oneOfEachKind() []pubsub.Event {
	var evs []pubsub.Event
	for _, w := range []string{"web", "webapp", "Web Srv"} {
		evs = append(evs,
			pubsub.Event{Kind: pubsub.Spawn, Watcher: w, Pid: 100, Time: at},
			pubsub.Event{Kind: pubsub.Kill, Watcher: w, Pid: 100, Signal: 15, Time: at},
			pubsub.Event{Kind: pubsub.Reap, Watcher: w, Pid: 100, ExitCode: -15, Time: at},
			pubsub.Event{Kind: pubsub.Stop, Watcher: w, Time: at},
			pubsub.Event{Kind: pubsub.Start, Watcher: w, Time: at},
			pubsub.Event{Kind: pubsub.Reload, Watcher: w, Time: at},
			pubsub.Event{Kind: pubsub.Updated, Watcher: w, Time: at},
			pubsub.Event{Kind: pubsub.Add, Watcher: w, Time: at},
			pubsub.Event{Kind: pubsub.Remove, Watcher: w, Time: at},
			pubsub.Event{Kind: pubsub.Flapping, Watcher: w, Reason: "trop de morts — 5 in 10s", Time: at},
		)
	}
	evs = append(evs,
		pubsub.Event{Kind: pubsub.Start, Time: at}, pubsub.Event{Kind: pubsub.Orphan, Pid: 77, ExitCode: 1, Time: at},
		pubsub.Event{Kind: pubsub.ReloadConfig, Time: at}, pubsub.Event{Kind: pubsub.Stop, Time: at})
	for i := range evs {
		evs[i].Seq = uint64(i + 1)
	}
	return evs
}

// want returns the [topic, body] pairs of evs whose topic one prefix matches.
func want(evs []pubsub.Event, prefixes ...string) [][]string {
	var out [][]string
	for _, ev := range evs {
		topic := pubsub.Topic(ev)
		for _, p := range prefixes {
			if strings.HasPrefix(topic, p) {
				out = append(out, []string{topic, string(pubsub.Body(ev))})
				break
			}
		}
	}
	return out
}

func TestGoSubscribers(t *testing.T) {
	t.Parallel()
	s := listen(t, SinkOptions{})
	web := goSub(t, s.Addr(), "watcher.web.")
	all := goSub(t, s.Addr(), "watcher.", "arbiter.")
	waitSubscribed(t, s, 2, 1)
	waitSubscribed(t, s, 1, 2)
	evs := oneOfEachKind()
	for _, ev := range evs {
		s.Send(pubsub.Topic(ev), pubsub.Body(ev))
	}
	for _, c := range []struct {
		name     string
		sub      zmq4.Socket
		prefixes []string
	}{{"watcher.web.", web, []string{"watcher.web."}}, {"watcher.+arbiter.", all, []string{"watcher.", "arbiter."}}} {
		w := want(evs, c.prefixes...)
		if diff := cmp.Diff(w, recvN(t, c.sub, len(w))); diff != "" {
			t.Errorf("Go SUB %s: frames differ (-want +got):\n%s", c.name, diff)
		}
	}
}

func TestLibzmqSubscribers(t *testing.T) {
	t.Parallel()
	needPyzmq(t)
	s := listen(t, SinkOptions{})
	evs := oneOfEachKind()
	webWant, allWant := want(evs, "watcher.web."), want(evs, "watcher.")
	web := startPySub(t, s.Addr(), len(webWant), "watcher.web.")
	all := startPySub(t, s.Addr(), len(allWant), "watcher.")
	waitSubscribed(t, s, 2, 1)
	for _, ev := range evs {
		s.Send(pubsub.Topic(ev), pubsub.Body(ev))
	}
	if diff := cmp.Diff(webWant, web()); diff != "" {
		t.Errorf("libzmq SUB watcher.web.: frames differ (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(allWant, all()); diff != "" {
		t.Errorf("libzmq SUB watcher.: frames differ (-want +got):\n%s", diff)
	}
}

// Bus → Forward → Sink → SUB, the way the arbiter wires it.
func TestForward(t *testing.T) {
	t.Parallel()
	s := listen(t, SinkOptions{})
	sub := goSub(t, s.Addr(), "")
	waitSubscribed(t, s, 1, 1)
	b := pubsub.NewBus()
	bs := b.Subscribe(100)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Forward(ctx, bs, s) }()
	evs := oneOfEachKind()
	for _, ev := range evs {
		ev.Seq = 0
		b.Publish(ev)
	}
	if diff := cmp.Diff(want(evs, ""), recvN(t, sub, len(evs))); diff != "" {
		t.Errorf("forwarded frames differ (-want +got):\n%s", diff)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Forward after cancel = %v, want context.Canceled", err)
	}
	go func() { done <- Forward(context.Background(), bs, s) }()
	bs.Close()
	if err := <-done; err != nil {
		t.Errorf("Forward after Subscription.Close = %v, want nil", err)
	}
}

func TestListenRefusesRemote(t *testing.T) {
	t.Parallel()
	for _, ep := range []string{"tcp://0.0.0.0:0", "tcp://*:0", "tcp://192.0.2.1:5556"} {
		_, err := Listen(ep, SinkOptions{})
		if err == nil || !strings.Contains(err.Error(), ep) || !strings.Contains(err.Error(), "readable by anyone") {
			t.Errorf("Listen(%q) = %v, want an error naming it and saying why", ep, err)
		}
	}
	s, err := Listen("tcp://*:0", SinkOptions{AllowRemote: true})
	if err != nil {
		t.Fatalf("Listen(tcp://*:0, AllowRemote) = %v", err)
	}
	s.Close()
	for _, ep := range []string{"udp://127.0.0.1:1", "tcp://127.0.0.1", "ipc://"} {
		if _, err := Listen(ep, SinkOptions{}); err == nil {
			t.Errorf("Listen(%q) = nil error, want one", ep)
		}
	}
}

func TestCloseTwiceAndStats(t *testing.T) {
	t.Parallel()
	s, err := Listen("tcp://127.0.0.1:0", SinkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.Addr(), "tcp://127.0.0.1:") || strings.HasSuffix(s.Addr(), ":0") {
		t.Errorf("Addr() = %q, want tcp://127.0.0.1:<port>", s.Addr())
	}
	sub := goSub(t, s.Addr(), "x")
	waitSubscribed(t, s, 1, 1)
	s.Send("x.1", []byte("a"))
	s.Send("y.1", []byte("b")) // filtered
	recvN(t, sub, 1)
	testproc.WaitFor(t, "Sent = 1", 5*time.Second, func() bool { return s.Stats().Sent == 1 })
	st := s.Stats()
	if st.Subscribers != 1 || len(st.Peers) != 1 || st.Peers[0].Sent != 1 || st.Dropped != 0 ||
		!strings.HasPrefix(st.Peers[0].Remote, "127.0.0.1:") {
		t.Errorf("Stats() = %+v, want 1 subscriber from 127.0.0.1 with 1 sent", st)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	// Not checked by dialling the port again: once free, the kernel may
	// hand it to another test's listener. goleak checks that the accept
	// loop ended.
}
