package stats

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

type fakeSource struct {
	watchers []Watcher
	sockets  []Socket
}

func (f *fakeSource) Watchers(ctx context.Context) ([]Watcher, error) { return f.watchers, nil }
func (f *fakeSource) Sockets() []Socket                               { return f.sockets }

type message struct {
	topic string
	body  string
}

// recorder is a Sender that keeps every message.
type recorder struct {
	mu   sync.Mutex
	msgs []message
}

func (r *recorder) Send(topic string, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, message{topic, string(body)})
}

func (r *recorder) take() []message {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.msgs
	r.msgs = nil
	return m
}

func TestPublisher(t *testing.T) {
	me := os.Getpid()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	// Two connections wait in the accept queue, never accepted.
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	src := &fakeSource{
		watchers: []Watcher{
			{Name: "Web Srv", Procs: []Process{{Pid: me, Wid: 1, Started: time.Now()}, {Pid: 1 << 30, Wid: 2, Started: time.Now()}}},
			{Name: "idle"},
		},
		sockets: []Socket{{Name: "web", FD: 7, Address: ln.Addr().String(), Conn: rc}, {Name: "other", FD: 9, Address: "/tmp/x.sock"}},
	}
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		p, err := New(src, rec, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- p.Run(ctx) }()
		synctest.Wait()
		if m := rec.take(); len(m) != 0 {
			t.Fatalf("before the first tick: %v", m)
		}
		if p.Snapshot() != nil {
			t.Error("Snapshot before the first tick is not nil")
		}
		for tick := range 3 {
			time.Sleep(time.Second)
			synctest.Wait()
			msgs := rec.take()
			var topics []string
			for _, m := range msgs {
				topics = append(topics, m.topic)
				if !json.Valid([]byte(m.body)) {
					t.Errorf("tick %d: %s: invalid JSON %s", tick, m.topic, m.body)
				}
			}
			pid := strconv.Itoa(me)
			want := []string{
				"stat.web srv." + pid, "stat.web srv",
				"stat.idle",
				"stat.circus." + pid, "stat.circus",
				"stat.sockets.7", "stat.sockets.9", "stat.sockets",
			}
			if diff := cmp.Diff(want, topics); diff != "" {
				t.Fatalf("tick %d: topics (-want +got):\n%s", tick, diff)
			}
			body := func(topic string) map[string]any {
				for _, m := range msgs {
					if m.topic == topic {
						var v map[string]any
						if err := json.Unmarshal([]byte(m.body), &v); err != nil {
							t.Fatal(err)
						}
						return v
					}
				}
				return nil
			}
			w := body("stat.web srv." + pid)
			if w["subtopic"] != float64(me) || w["name"] != nil || w["pid"] != float64(me) || w["started"] != nil || w["wid"] != nil {
				t.Errorf("worker body %v", w)
			}
			if !strings.Contains(findBody(msgs, "stat.web srv."+pid), `"children": [], "subtopic": `+pid+`, "name": null}`) {
				t.Errorf("worker body ends %s", findBody(msgs, "stat.web srv."+pid))
			}
			if got, want := findBody(msgs, "stat.idle"), `{"pid": [], "cpu": 0.0, "mem": 0, "age": "N/A"}`; got != want {
				t.Errorf("stat.idle = %s, want %s", got, want)
			}
			agg := body("stat.web srv")
			if diff := cmp.Diff([]any{float64(me)}, agg["pid"]); diff != "" {
				t.Errorf("aggregate pids (-want +got):\n%s", diff)
			}
			if c := body("stat.circus." + pid); c["name"] != "circusd" {
				t.Errorf("stat.circus.%s name = %v, want circusd", pid, c["name"])
			}
			if got, want := findBody(msgs, "stat.sockets.7"), `{"fd": 7, "subtopic": 7, "reads": 2, "address": "`+ln.Addr().String()+`"}`; got != want {
				t.Errorf("stat.sockets.7 = %s, want %s", got, want)
			}
			if got, want := findBody(msgs, "stat.sockets"), `{"addresses": ["`+ln.Addr().String()+`", "/tmp/x.sock"], "reads": 2}`; got != want {
				t.Errorf("stat.sockets = %s, want %s", got, want)
			}
		}
		if s := p.Snapshot(); s == nil || len(s.Watchers) != 2 {
			t.Errorf("Snapshot() = %+v", s)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func findBody(msgs []message, topic string) string {
	for _, m := range msgs {
		if m.topic == topic {
			return m.body
		}
	}
	return ""
}

func TestSocketReads(t *testing.T) {
	t.Run("tcp listener", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		rc, _ := ln.(*net.TCPListener).SyscallConn()
		if n := socketReads(rc); n != 0 {
			t.Errorf("idle listener: reads = %d, want 0", n)
		}
		var conns []net.Conn
		for range 3 {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
		waitFor(t, "3 queued connections", 5*time.Second, func() bool { return socketReads(rc) == 3 })
		c, _ := ln.Accept()
		c.Close()
		if n := socketReads(rc); n != 2 {
			t.Errorf("after one accept: reads = %d, want 2", n)
		}
		for _, c := range conns {
			c.Close()
		}
		ln.Close()
		if n := socketReads(rc); n != 0 {
			t.Errorf("closed: reads = %d, want 0", n)
		}
	})
	t.Run("unix listener", func(t *testing.T) {
		path := t.TempDir() + "/s"
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		rc, _ := ln.(*net.UnixListener).SyscallConn()
		if n := socketReads(rc); n != 0 {
			t.Errorf("idle: reads = %d, want 0", n)
		}
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if n := socketReads(rc); n != 1 {
			t.Errorf("pending: reads = %d, want 1", n)
		}
	})
	t.Run("udp", func(t *testing.T) {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		rc, _ := pc.(*net.UDPConn).SyscallConn()
		if n := socketReads(rc); n != 0 {
			t.Errorf("idle: reads = %d, want 0", n)
		}
		c, err := net.Dial("udp", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Write([]byte("x"))
		waitFor(t, "a datagram", 5*time.Second, func() bool { return socketReads(rc) == 1 })
	})
	if n := socketReads(nil); n != 0 {
		t.Errorf("nil conn: reads = %d", n)
	}
}
