package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/control"
)

// helperEnv makes the test binary play circusctl itself (os/exec's helper
// pattern), for tests that need a real process: exit statuses as a shell
// sees them, and the completion scripts, which run "circusctl list".
const helperEnv = "CIRCUSCTL_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		main()
	}
	goleak.VerifyTestMain(m)
}

// circusctl is a client: it must never link the arbiter (DESIGN.md).
func TestNoArbiterDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/ringmaster-dev/ringmaster/arbiter") {
			t.Errorf("circusctl depends on %s", dep)
		}
	}
}

// top draws every worker of a watcher with its cpu, memory and age, the
// sockets, and drops a worker once it has been silent for the timeout.
func TestTopBoard(t *testing.T) {
	b := &board{procs: map[string]map[int]sample{}, sockets: map[string]float64{}}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	b.add("stat.web srv.101", []byte(`{"cpu": 12.5, "mem": 0.5, "age": 65.0, "pid": 101}`), now)
	b.add("stat.web srv.102", []byte(`{"cpu": 40.0, "mem": 1.5, "age": 10.0, "pid": 102}`), now.Add(-5*time.Second))
	b.add("stat.web srv", []byte(`{"pid": [101, 102], "cpu": 26.2, "mem": 2.0, "age": 65.0}`), now)
	b.add("stat.sockets.3", []byte(`{"fd": 3, "reads": 2, "address": "127.0.0.1:8080"}`), now)
	b.add("stat.web srv.103", []byte(`not json`), now)
	var out strings.Builder
	b.draw(&out, "tcp://127.0.0.1:5557", 3*time.Second, now)
	got := out.String()
	for _, want := range []string{"web srv", "101", "12.5", "1m5s", "127.0.0.1:8080", "reads 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("top output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "102") || strings.Contains(got, "103") {
		t.Errorf("top output shows a worker silent for longer than the timeout, or a malformed one:\n%s", got)
	}
}

// request is what the fake arbiter received: each property as its JSON
// text, so that tests see the wire types (3 against "3", 10.0 against 10).
type request struct {
	command string
	props   map[string]string
}

// arbiter is a control endpoint on a loopback port answering as circusd
// does, with canned replies, and recording every request.
type arbiter struct {
	srv   *control.Server
	reply func(req control.Request) control.Reply // nil: cannedReply

	mu   sync.Mutex
	reqs []request // guarded by mu
}

func newArbiter(t *testing.T, reply func(control.Request) control.Reply) *arbiter {
	t.Helper()
	a := &arbiter{reply: reply}
	if a.reply == nil {
		a.reply = cannedReply
	}
	srv, err := control.Listen("tcp://127.0.0.1:0", control.HandlerFunc(a.handle),
		control.ServerOptions{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	a.srv = srv
	return a
}

func (a *arbiter) handle(ctx context.Context, req control.Request) control.Reply {
	r := request{command: req.Command, props: map[string]string{}}
	for k, v := range req.Properties {
		var b bytes.Buffer
		json.Compact(&b, v)
		r.props[k] = b.String()
	}
	a.mu.Lock()
	a.reqs = append(a.reqs, r)
	a.mu.Unlock()
	if req.Command == "block" || (req.Command == "status" && req.Has("name") && string(req.Properties["name"]) == `"slow"`) {
		<-ctx.Done() // until the server closes: a timeout for the client
		return control.Failf(control.CommandError, "closed")
	}
	return a.reply(req)
}

func (a *arbiter) requests() []request {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]request(nil), a.reqs...)
}

func (a *arbiter) endpoint() string { return a.srv.Addr() }

// obj is an ordered JSON object from alternating keys and values.
func obj(kv ...any) control.Object {
	o := make(control.Object, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		o = append(o, control.Field{Key: kv[i].(string), Value: kv[i+1]})
	}
	return o
}

// ok is a success reply with the fields of obj(kv...).
func ok(kv ...any) control.Reply { return control.OK(obj(kv...)...) }

// procInfo is §4.2's example process info.
func procInfo(pid int, cmd string, children ...control.Object) control.Object {
	return obj("mem_info1", "1.34M", "mem_info2", "2.44M", "cpu", 0.0, "mem", 0.006, "ctime", "0:00.20",
		"pid", pid, "username", "root", "nice", 0, "create_time", 1795464648.28, "age", 65.04,
		"cmdline", cmd, "children", append([]control.Object{}, children...), "started", 1795464649.2569616, "wid", 1)
}

// cannedReply answers every command of §2.4 with a reply shaped as
// circusd's, from §2.7's literal exchanges where it has one.
func cannedReply(req control.Request) control.Reply {
	name, _ := req.StringOr("name", "")
	waiting, _ := req.BoolOr("waiting", false)
	switch req.Command {
	case "incr", "decr":
		if name == "single" {
			return ok("numprocesses", 1, "singleton", true)
		}
		if waiting {
			return ok("numprocesses", 3)
		}
		return ok()
	case "dstats":
		return ok("info", procInfo(900, "arbiter", obj("pid", 901, "cmdline", "sh", "username", "root", "nice", 0,
			"mem_info1", "512B", "mem_info2", "1.00M", "cpu", 0.0, "mem", 0.0, "ctime", "0:00.00", "children", []any{})))
	case "get":
		keys, _ := req.Strings("keys")
		all := map[string]any{"numprocesses": 3, "send_hup": true, "env": obj("B", "2", "A", "1"), "uid": nil, "graceful_timeout": 30.0}
		var o control.Object
		for _, k := range keys {
			v, found := all[k]
			if !found {
				return control.Failf(control.MessageError, "'%s' option not found", k)
			}
			o = append(o, obj(k, v)...)
		}
		return ok("options", o)
	case "globaloptions":
		o := obj("endpoint", "tcp://127.0.0.1:5555", "stats_endpoint", "tcp://127.0.0.1:5557",
			"pubsub_endpoint", "tcp://127.0.0.1:5556", "check_delay", 5.0, "multicast_endpoint", "udp://237.219.251.97:12027")
		if opt, _ := req.StringOr("option", ""); opt != "" {
			for _, f := range o {
				if f.Key == opt {
					return ok("options", control.Object{f})
				}
			}
			return control.Failf(control.MessageError, "'%s' not an existing option", opt)
		}
		return ok("options", o)
	case "ipython":
		return control.Failf(control.CommandError, "ipython is not supported")
	case "list":
		if name != "" {
			return ok("pids", []int{101, 102})
		}
		return ok("watchers", []string{"circusd-stats", "sleeper", "web srv"})
	case "listsockets":
		return ok("sockets", []control.Object{
			obj("fd", 7, "name", "web", "backlog", 2048, "host", "127.0.0.1", "port", 18080),
			obj("fd", 8, "name", "admin", "backlog", 128, "path", "/run/admin.sock"),
		})
	case "numprocesses":
		if name != "" {
			return ok("numprocesses", 2, "watcher_name", name)
		}
		return ok("numprocesses", 5)
	case "numwatchers":
		return ok("numwatchers", 3)
	case "options":
		if name == "nope" {
			return control.Failf(control.MessageError, "program nope not found")
		}
		return ok("options", obj("numprocesses", 2, "warmup_delay", 0.0, "working_dir", "/srv", "uid", nil,
			"send_hup", false, "env", obj("PORT", "8080", "HOME", "/root"), "args", []string{"-v"}, "cmd", "sleep 60"))
	case "restart":
		if waiting && name != "" {
			return ok("info", obj("stopped", []int{9095, 9096}, "started", []int{9097, 9098}, "kept", []int{}))
		}
		return ok()
	case "stats":
		info := obj("101", procInfo(101, "sleep", procInfo(150, "cat")), "102", procInfo(102, "sleep"))
		switch {
		case name == "":
			return ok("infos", obj("web srv", obj("103", "No such process (stopped?)"), "sleeper", info))
		case req.Has("process"):
			pid, _ := req.Int("process")
			return ok("process", pid, "info", procInfo(int(pid), "sleep"))
		}
		return ok("name", name, "info", info)
	case "status":
		if name != "" {
			return control.State("active")
		}
		return ok("statuses", obj("web srv", "stopped", "sleeper", "active", "circusd-stats", "active"))
	case "add", "kill", "quit", "reload", "reloadconfig", "rm", "set", "signal", "start", "stop":
		return ok()
	}
	return control.Failf(control.UnknownCommand, "unknown command: '%s'", req.Command)
}

// result is one run of circusctl.
type result struct {
	stdout, stderr string
	code           int
}

// runCtl runs circusctl's run with args, the environment variables env
// (nothing else of the test process's) and stdin.
func runCtl(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := run(ctx, args, environ{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return env[k] },
	})
	return result{out.String(), errb.String(), code}
}
