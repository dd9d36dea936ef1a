package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

const systemPython = testproc.SystemPython

var needPyzmq = testproc.NeedPyzmq

var freePort = testproc.FreePort

// frames collects [topic, body] pairs from one subscriber.
type frames struct {
	mu  sync.Mutex
	got [][2]string
}

func (f *frames) add(topic, body string) {
	f.mu.Lock()
	f.got = append(f.got, [2]string{topic, body})
	f.mu.Unlock()
}

func (f *frames) list() [][2]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][2]string(nil), f.got...)
}

// since returns the frames from the first with seq >= from.
func (f *frames) since(from uint64) [][2]string {
	var out [][2]string
	for _, fr := range f.list() {
		var v struct{ Seq uint64 }
		if json.Unmarshal([]byte(fr[1]), &v) == nil && v.Seq >= from {
			out = append(out, fr)
		}
	}
	return out
}

func (f *frames) maxSeq() uint64 {
	var m uint64
	for _, fr := range f.list() {
		var v struct{ Seq uint64 }
		if json.Unmarshal([]byte(fr[1]), &v) == nil {
			m = max(m, v.Seq)
		}
	}
	return m
}

// Every event the arbiter publishes reaches a Go SUB, a libzmq SUB and
// circusctl listen as the same bytes, here those of a graceful reload:
// spawn×N (the new workers first), kill×N, reap×N, reload.
func TestEventsReachEverySubscriber(t *testing.T) {
	needPyzmq(t)
	dir := t.TempDir()
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
	ini := filepath.Join(dir, "circus.ini")
	base := "[circus]\npubsub_endpoint = " + endpoint + "\n\n[watcher:Web Srv]\ncmd = WORKER sleep\nnumprocesses = 2\n"
	writeINI(t, ini, base)
	p := startArbiter(t, ini)
	waitFor(t, "the arbiter's events endpoint", 10*time.Second, func() bool {
		return strings.Contains(p.out.String(), "publishing events")
	})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var goSub, pySub, ctlSub frames
	c, err := zmqpub.Dial(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	goDone := make(chan struct{})
	go func() {
		defer close(goDone)
		for {
			topic, body, err := c.Recv()
			if err != nil {
				return
			}
			goSub.add(topic, string(body))
		}
	}()
	defer func() { cancel(); c.Close(); <-goDone }()

	script := filepath.Join(dir, "sub.py")
	if err := os.WriteFile(script, []byte(pySubScript), 0o644); err != nil {
		t.Fatal(err)
	}
	readLines := func(name string, cmd *exec.Cmd, parse func(string) (string, string, bool), into *frames) {
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if topic, body, ok := parse(sc.Text()); ok {
					into.add(topic, body)
				}
			}
		}()
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); <-done })
	}
	readLines("python SUB", exec.Command(systemPython, script, endpoint), func(line string) (string, string, bool) {
		var pair [2]string
		if json.Unmarshal([]byte(line), &pair) != nil {
			return "", "", false
		}
		return pair[0], pair[1], true
	}, &pySub)
	readLines("circusctl listen", exec.Command(circusctlBin, "--endpoint", endpoint, "listen"), func(line string) (string, string, bool) {
		topic, body, ok := strings.Cut(line, ": ")
		return topic, body, ok
	}, &ctlSub)

	// Slow joiners: kill workers until every subscriber has seen a reap.
	reaped := func(f *frames) bool {
		for _, fr := range f.list() {
			if strings.HasSuffix(fr[0], ".reap") {
				return true
			}
		}
		return false
	}
	waitFor(t, "every subscriber to see a reap", 20*time.Second, func() bool {
		if reaped(&goSub) && reaped(&pySub) && reaped(&ctlSub) {
			return true
		}
		if pid := readWorkerPid(t, p.cmd.Process.Pid); pid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
		return false
	})

	// The last killed worker is replaced, after a crash loop's pause
	// (every kill above counts), before the reload begins.
	// Counted from the first reap seen: the subscriber may have joined
	// after the first spawns; every reap since is followed by a spawn.
	waitFor(t, "the pool whole again", 20*time.Second, func() bool {
		n, counting := 0, false
		for _, fr := range goSub.list() {
			switch {
			case strings.HasSuffix(fr[0], ".reap"):
				counting = true
				n--
			case counting && strings.HasSuffix(fr[0], ".spawn"):
				n++
			}
		}
		return counting && n >= 0
	})
	// A change of the watcher's options reloads it gracefully.
	from := goSub.maxSeq() + 1
	writeINI(t, ini, base+"graceful_timeout = 5\n")
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	want := []string{"watcher.web_srv.spawn", "watcher.web_srv.spawn", "watcher.web_srv.kill", "watcher.web_srv.kill",
		"watcher.web_srv.reap", "watcher.web_srv.reap", "watcher.web_srv.reload", "arbiter.reloadconfig"}
	var got [][2]string
	waitFor(t, "the reload's events at every subscriber", 20*time.Second, func() bool {
		got = goSub.since(from)
		return len(got) >= len(want) && len(pySub.since(from)) >= len(want) && len(ctlSub.since(from)) >= len(want)
	})
	var topics []string
	for _, fr := range got {
		topics = append(topics, fr[0])
	}
	if fmt.Sprint(topics) != fmt.Sprint(want) {
		t.Errorf("topics of a reload = %v\nwant %v", topics, want)
	}
	bodies := map[string]*regexp.Regexp{
		"kill":         regexp.MustCompile(`^\{"process_pid": \d+, "time": \d+\.\d+, "seq": \d+\}$`),
		"spawn":        regexp.MustCompile(`^\{"process_pid": \d+, "time": \d+\.\d+, "seq": \d+\}$`),
		"reap":         regexp.MustCompile(`^\{"process_pid": \d+, "time": \d+\.\d+, "exit_code": -15, "seq": \d+\}$`),
		"stop":         regexp.MustCompile(`^\{"time": \d+\.\d+, "seq": \d+\}$`),
		"start":        regexp.MustCompile(`^\{"time": \d+\.\d+, "seq": \d+\}$`),
		"reloadconfig": regexp.MustCompile(`^\{"time": \d+\.\d+, "seq": \d+\}$`),
		"reload":       regexp.MustCompile(`^\{"time": \d+\.\d+, "seq": \d+\}$`),
	}
	for _, fr := range got {
		kind := fr[0][strings.LastIndex(fr[0], ".")+1:]
		if re := bodies[kind]; re == nil || !re.MatchString(fr[1]) {
			t.Errorf("%s body %s is not Circus's shape", fr[0], fr[1])
		}
	}
	py, ctl := pySub.since(from)[:len(got)], ctlSub.since(from)[:len(got)]
	if fmt.Sprint(py) != fmt.Sprint(got) {
		t.Errorf("libzmq SUB got\n%q\nGo SUB got\n%q", py, got)
	}
	if fmt.Sprint(ctl) != fmt.Sprint(got) {
		t.Errorf("circusctl listen printed\n%q\nGo SUB got\n%q", ctl, got)
	}
}

// readWorkerPid returns a child of the arbiter, 0 if it has none yet.
// Workers are forked from the arbiter's spawner thread, so every thread's
// children are looked at.
func readWorkerPid(t *testing.T, arbiterPid int) int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", arbiterPid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err == nil {
			return pid
		}
	}
	return 0
}

// pySubScript is a libzmq subscriber (Circus's own client library's
// transport) to everything at argv[1], printing each message as a JSON
// [topic, body] line.
const pySubScript = `import json, sys, zmq
s = zmq.Context().socket(zmq.SUB)
s.setsockopt(zmq.LINGER, 0)
s.connect(sys.argv[1])
s.setsockopt(zmq.SUBSCRIBE, b"")
while True:
    t, b = s.recv_multipart()
    print(json.dumps([t.decode(), b.decode()]), flush=True)
`
