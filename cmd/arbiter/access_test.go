package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Users of this machine the access test acts as: nobody may do nothing,
// games (uid 5) may read, daemon (uid 1) may do everything.
const (
	uidNobody = 65534
	uidGames  = 5
	uidDaemon = 1
)

// ctlAs runs our circusctl as uid against endpoint.
func ctlAs(t *testing.T, uid int, endpoint string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(circusctlBin, append([]string{"--endpoint", endpoint, "--timeout", "30"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("circusctl %v as uid %d: %v", args, uid, err)
	}
	return out.String(), errb.String(), code
}

// A Circus client (libzmq DEALER, Circus's frames) run as uid: it sends
// each request line it reads and prints each reply.
const circusClientScript = `import sys, uuid, zmq
s = zmq.Context.instance().socket(zmq.DEALER)
s.setsockopt(zmq.IDENTITY, uuid.uuid4().hex.encode())
s.setsockopt(zmq.LINGER, 0)
s.connect(sys.argv[1])
for line in sys.stdin:
    s.send(line.strip().encode())
    if not s.poll(30000):
        print("timeout", flush=True)
        continue
    print(s.recv().decode(), flush=True)
`

// circusClientAs sends each request with a libzmq client run as uid and
// returns the replies.
func circusClientAs(t *testing.T, uid int, dir, endpoint string, requests ...string) []map[string]any {
	t.Helper()
	script := filepath.Join(dir, "circus_client.py")
	if err := os.WriteFile(script, []byte(circusClientScript), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(systemPython, script, endpoint)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	cmd.Stdin = strings.NewReader(strings.Join(requests, "\n") + "\n")
	var errb strings.Builder
	cmd.Stderr = &errb
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python client as uid %d: %v\n%s", uid, err, errb.String())
	}
	var replies []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("python client printed %q", line)
		}
		replies = append(replies, r)
	}
	return replies
}

// subAs subscribes to every event of endpoint with a libzmq SUB run as
// uid, which prints each topic; it runs until the test ends.
func subAs(t *testing.T, uid int, dir, endpoint string) *testproc.Buffer {
	t.Helper()
	script := `import sys, zmq
s = zmq.Context.instance().socket(zmq.SUB)
s.setsockopt(zmq.SUBSCRIBE, b"")
s.connect(sys.argv[1])
while True:
    topic, body = s.recv_multipart()
    print(topic.decode(), flush=True)
`
	cmd := exec.Command(systemPython, "-c", script, endpoint)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out := &testproc.Buffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return out
}

// httpGetAs fetches url with a client run as uid and returns the status
// and body.
func httpGetAs(t *testing.T, uid int, url string) (int, string) {
	t.Helper()
	script := `import sys, urllib.request, urllib.error
try:
    r = urllib.request.urlopen(sys.argv[1], timeout=30)
    print(r.status); print(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code); print(e.read().decode())
`
	cmd := exec.Command(systemPython, "-c", script, url)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("http client as uid %d: %v\n%s", uid, err, out)
	}
	code, body, _ := strings.Cut(string(out), "\n")
	n, _ := strconv.Atoi(code)
	return n, body
}

// A local user who is not allowed changes nothing, over tcp and ipc, with
// our circusctl and with a libzmq client sending Circus's frames; a read
// user reads; control users and root do everything; every mutating
// command, run or refused, is an audit event naming who sent it.
func TestAccessControl(t *testing.T) {
	testproc.NeedRoot(t, "run the arbiter as root and its clients as other users")
	needPyzmq(t)
	// The binaries' directory is private to root; the clients run as
	// other users.
	if err := os.Chmod(filepath.Dir(circusctlBin), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"tcp", "ipc"} {
		t.Run(kind, func(t *testing.T) {
			dir, err := os.MkdirTemp("", "access-")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			os.Chmod(dir, 0o755)
			endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
			if kind == "ipc" {
				endpoint = "ipc://" + filepath.Join(dir, "control.sock")
			}
			events := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
			httpPort := freePort(t)
			pwned := filepath.Join(dir, "pwned")
			ini := filepath.Join(dir, "circus.ini")
			writeINI(t, ini, fmt.Sprintf(`[watcher:w]
cmd = sleep 3600

[circus]
endpoint = %s
pubsub_endpoint = %s
control_users = daemon
read_users = games
httpd = true
httpd_host = 127.0.0.1
httpd_port = %d
`, endpoint, events, httpPort))
			startArbiter(t, ini)
			waitFor(t, "the control endpoint", 20*time.Second, func() bool {
				_, _, code := circusctl(t, endpoint, "list")
				return code == 0
			})
			if kind == "ipc" {
				// The socket file is 0600 root's; opened to all, as an
				// operator might, it still lets nobody through.
				if err := os.Chmod(filepath.Join(dir, "control.sock"), 0o666); err != nil {
					t.Fatal(err)
				}
			}
			sub := subscribe(t, events)
			// Events name commands and who sent them: only readers get them.
			readerSub := subAs(t, uidGames, dir, events)
			strangerSub := subAs(t, uidNobody, dir, events)
			waitFor(t, "a reader's subscription", 20*time.Second, func() bool {
				if strings.Contains(readerSub.String(), ".command") {
					return true
				}
				ctlOK(t, endpoint, "signal", "w", "CONT")
				time.Sleep(50 * time.Millisecond)
				return false
			})
			before := ctlPids(t, endpoint, "w")

			mutating := [][]string{
				{"add", "pwned", "/bin/sh -c 'id > " + pwned + "'"},
				{"start", "w"}, {"stop", "w"}, {"restart", "w"}, {"reload", "w"},
				{"reloadconfig"}, {"set", "w", "numprocesses", "3"}, {"incr", "w"},
				{"decr", "w"}, {"signal", "w", "HUP"}, {"kill", "w"}, {"rm", "w"}, {"quit"},
			}
			for _, args := range mutating {
				_, stderr, code := ctlAs(t, uidNobody, endpoint, args...)
				if code == 0 || !strings.Contains(stderr, "permission denied: uid 65534 (nobody)") ||
					!strings.Contains(stderr, "control_users") {
					t.Errorf("circusctl %s as nobody: exit %d, stderr %q; want a refusal naming the uid and control_users", args[0], code, stderr)
				}
			}
			_, stderr, code := ctlAs(t, uidNobody, endpoint, "status")
			if code == 0 || !strings.Contains(stderr, "read_users") {
				t.Errorf("circusctl status as nobody: exit %d, stderr %q; want a refusal naming read_users", code, stderr)
			}

			// Circus's own client: the same refusals in Circus's error shape.
			var reqs []string
			for i, cmd := range []string{"add", "incr", "stop", "quit", "reloadconfig", "status"} {
				reqs = append(reqs, fmt.Sprintf(`{"id": "r%d", "command": %q, "properties": {"name": "w", "cmd": "id", "waiting": true}}`, i, cmd))
			}
			for i, r := range circusClientAs(t, uidNobody, dir, endpoint, reqs...) {
				reason, _ := r["reason"].(string)
				if r["status"] != "error" || r["errno"] != float64(5) || r["id"] != fmt.Sprintf("r%d", i) ||
					!strings.Contains(reason, "permission denied: uid 65534 (nobody)") {
					t.Errorf("libzmq client as nobody, request %d: %v; want Circus's error reply with errno 5 naming the uid", i, r)
				}
			}

			// Nothing changed.
			if _, err := os.Stat(pwned); err == nil {
				t.Error("a refused add ran its command")
			}
			if after := ctlPids(t, endpoint, "w"); !sameSet(before, after) {
				t.Errorf("w's workers went from %v to %v under refused commands", before, after)
			}
			if out := ctlOK(t, endpoint, "list"); strings.Contains(out, "pwned") {
				t.Errorf("list = %q after a refused add", out)
			}

			// A read user reads, and may not change anything.
			if out, stderr, code := ctlAs(t, uidGames, endpoint, "status"); code != 0 || !strings.Contains(out, "w: active") {
				t.Errorf("circusctl status as games (read_users): exit %d, %q %q", code, out, stderr)
			}
			if _, stderr, code := ctlAs(t, uidGames, endpoint, "incr", "w"); code == 0 || !strings.Contains(stderr, "uid 5 (games)") {
				t.Errorf("circusctl incr as games: exit %d, %q; want refused", code, stderr)
			}
			// The console is shown to those who may read, as the kernel
			// says who holds the browser's connection.
			console := fmt.Sprintf("http://127.0.0.1:%d/", httpPort)
			if code, body := httpGetAs(t, uidNobody, console); code != 403 || !strings.Contains(body, "read_users") {
				t.Errorf("the console for nobody: %d %q, want 403 naming read_users", code, body)
			}
			if code, body := httpGetAs(t, uidGames, console); code != 200 {
				t.Errorf("the console for games (read_users): %d %q, want 200", code, body)
			}

			// A control user and root change things.
			if out, stderr, code := ctlAs(t, uidDaemon, endpoint, "incr", "w"); code != 0 {
				t.Errorf("circusctl incr as daemon (control_users): exit %d, %q %q", code, out, stderr)
			}
			ctlOK(t, endpoint, "decr", "w")
			r := circusClientAs(t, uidDaemon, dir, endpoint, `{"id": "d1", "command": "numprocesses", "properties": {"name": "w"}}`)
			if r[0]["status"] != "ok" || r[0]["numprocesses"] != float64(1) {
				t.Errorf("libzmq client as daemon: %v", r[0])
			}

			// The audit trail: refused and run commands, with who sent them.
			type audit struct {
				Command, Peer, Via, Status, Reason string
				UID, PID                           *int
			}
			var got []audit
			waitFor(t, "the audit events", 10*time.Second, func() bool {
				got = got[:0]
				for _, f := range sub.list() {
					if !strings.HasSuffix(f[0], ".command") {
						continue
					}
					var a audit
					if err := json.Unmarshal([]byte(f[1]), &a); err != nil {
						t.Fatalf("%s %s: %v", f[0], f[1], err)
					}
					got = append(got, a)
				}
				return len(got) >= len(mutating)+1+6+1+2
			})
			find := func(status string, uid int, command string) *audit {
				for i, a := range got {
					if a.Status == status && a.UID != nil && *a.UID == uid && a.Command == command {
						return &got[i]
					}
				}
				t.Errorf("no %s %s event from uid %d among %+v", status, command, uid, got)
				return nil
			}
			if a := find("refused", uidNobody, "add"); a != nil && (a.Via != "control" || !strings.Contains(a.Reason, "control_users")) {
				t.Errorf("refused add: %+v", a)
			}
			if a := find("ok", uidDaemon, "incr"); a != nil && kind == "ipc" && (a.PID == nil || *a.PID <= 0) {
				t.Errorf("incr over ipc: %+v, want the sender's pid", a)
			}
			find("ok", 0, "decr")
			if !strings.Contains(readerSub.String(), "watcher.w.command") {
				t.Errorf("a read user's subscriber missed the events: %q", readerSub.String())
			}
			if out := strangerSub.String(); out != "" {
				t.Errorf("nobody's subscriber got events: %q", out)
			}
			for _, a := range got {
				if a.Command == "status" || a.Command == "numprocesses" || a.Command == "list" {
					if a.Status != "refused" {
						t.Errorf("a read was audited: %+v", a)
					}
				}
			}
		})
	}
}
