package main_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// The systemd unit in deploy/ passes systemd-analyze verify without a
// word (it prints warnings, such as an unknown key or a Type this systemd
// does not know, and still exits 0), and its ExecStartPre accepts the
// config it names.
func TestSystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	analyze := testproc.NeedTool(t, "systemd-analyze", "systemd")
	unit, err := os.ReadFile("../../deploy/systemd/ringmaster.service")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nType=notify\n", "\nKillMode=mixed\n", "\nDelegate=yes\n", "\nExecReload=/bin/kill -HUP $MAINPID\n", "\nTimeoutStopSec="} {
		if !strings.Contains(string(unit), want) {
			t.Errorf("the unit lacks %q", strings.TrimSpace(want))
		}
	}
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, "[watcher:a]\ncmd = WORKER sleep\n")
	// verify checks that the programs exist: point it at the ones built.
	text := strings.ReplaceAll(string(unit), "/usr/local/bin/arbiter", arbiterBin)
	text = strings.ReplaceAll(text, "/etc/ringmaster/circus.ini", ini)
	path := filepath.Join(dir, "ringmaster.service")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	pre := regexp.MustCompile(`(?m)^ExecStartPre=(.*)$`).FindStringSubmatch(text)
	if pre == nil {
		t.Fatal("the unit has no ExecStartPre")
	}
	args := strings.Fields(pre[1])
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Errorf("ExecStartPre %s: %v\n%s", pre[1], err, out)
	}
}

// nsPid is the pid of host process pid inside its own pid namespace (the
// last NSpid of its status).
func nsPid(t *testing.T, pid int) int {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "NSpid:"); ok {
			ids := strings.Fields(rest)
			n, _ := strconv.Atoi(ids[len(ids)-1])
			return n
		}
	}
	t.Fatalf("no NSpid in /proc/%d/status", pid)
	return 0
}

// zombiesIn lists the zombies of the pid namespace whose /proc/PID/ns/pid
// link reads ns.
func zombiesIn(ns string) []int {
	var zs []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); l != ns {
			continue
		}
		if testproc.DeadOrZombie(pid) && !testproc.Gone(pid) {
			zs = append(zs, pid)
		}
	}
	return zs
}

// The arbiter as a container's PID 1 (here a new pid namespace, as
// docker run gives): it reaps the orphan a worker leaves (no zombie
// stays), a SIGTERM from outside (docker stop) stops the workers with
// their stop_signal, not SIGKILL, and it exits 0.
func TestPID1(t *testing.T) {
	testproc.NeedUnshare(t)
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf(`[watcher:orphans]
cmd = WORKER orphan %s/orphan.pid
respawn = false
# Not killed with its worker's cgroup: the orphan lives on, as it would
# in a container without cgroups of its own, and exits by itself.
cgroup = off

[watcher:web]
cmd = WORKER describe %s/web-$(circus.wid).json
numprocesses = 2
graceful_timeout = 30
`, dir, dir))
	p := startArbiterCmd(t, exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", arbiterBin, ini))
	var arb int
	waitFor(t, "the arbiter in its namespace", 10*time.Second, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.cmd.Process.Pid, p.cmd.Process.Pid))
		arb, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return arb > 0
	})
	if got := nsPid(t, arb); got != 1 {
		t.Fatalf("the arbiter is pid %d in its namespace, want 1", got)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", arb))
	if err != nil {
		t.Fatal(err)
	}

	// The worker's child, made a session leader, outlives it by 200ms:
	// an orphan, which the kernel hands to pid 1.
	var orphan int
	waitFor(t, "the orphan's pid", 10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "orphan.pid"))
		orphan, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return orphan > 0
	})
	reaped := regexp.MustCompile(`msg="reaped orphan" pid=` + strconv.Itoa(orphan) + ` exit_code=0\b`)
	waitFor(t, "the orphan reaped", 10*time.Second, func() bool { return reaped.MatchString(p.out.String()) })
	waitFor(t, "no zombie in the namespace", 10*time.Second, func() bool { return len(zombiesIn(ns)) == 0 })

	var webPids []int
	for _, wid := range []string{"1", "2"} {
		waitFor(t, "web worker "+wid, 10*time.Second, func() bool {
			st, ok := testproc.ReadState(filepath.Join(dir, "web-"+wid+".json"))
			if ok {
				webPids = append(webPids, st.Pid)
			}
			return ok
		})
	}
	if err := syscall.Kill(arb, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("unshare (and so the arbiter) exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the arbiter still runs 30s after SIGTERM")
	}
	out := p.out.String()
	for _, pid := range webPids {
		// Worker pids are those of the namespace, as the arbiter logs them.
		if !regexp.MustCompile(`msg=reaped watcher=web pid=` + strconv.Itoa(pid) + ` exit_code=-15\b`).MatchString(out) {
			t.Errorf("web worker %d not stopped by its SIGTERM (exit_code=-15):\n%s", pid, out)
		}
	}
	if strings.Contains(out, "escalating to SIGKILL") {
		t.Errorf("a worker needed SIGKILL:\n%s", out)
	}
}

// The container's config, run as the image runs it: the arbiter as PID 1
// of a pid namespace, as an unprivileged user (distroless's nonroot; here
// nobody), serving the example worker; the image's HEALTHCHECK command
// answers; docker stop's SIGTERM drains the workers, which exit 0, and so
// does the arbiter.
func TestContainerConfig(t *testing.T) {
	testproc.NeedUnshare(t)
	setpriv := testproc.NeedTool(t, "setpriv", "util-linux")
	t.Parallel()
	dir, err := os.MkdirTemp("", "ringmaster-container")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// nobody reads the config and runs the binaries.
	for _, d := range []string{dir, filepath.Dir(arbiterBin)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	httpworker := filepath.Join(dir, "httpworker")
	build := exec.Command("go", "build", "-o", httpworker, "../../examples/httpworker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build httpworker: %v\n%s", err, out)
	}
	b, err := os.ReadFile("../../deploy/container/circus.ini")
	if err != nil {
		t.Fatal(err)
	}
	web, ctl, pub := testproc.FreePort(t), testproc.FreePort(t), testproc.FreePort(t)
	ini := strings.NewReplacer(
		"/usr/local/bin/httpworker", httpworker,
		"port = 8080", fmt.Sprintf("port = %d", web),
		"127.0.0.1:5555", fmt.Sprintf("127.0.0.1:%d", ctl),
		"127.0.0.1:5556", fmt.Sprintf("127.0.0.1:%d", pub),
	).Replace(string(b))
	path := filepath.Join(dir, "circus.ini")
	if err := os.WriteFile(path, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startArbiterCmd(t, exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child",
		setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", arbiterBin, path))

	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	waitFor(t, "a worker's answer", 20*time.Second, func() bool {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", web))
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.HasPrefix(string(body), "hello from pid ")
	})
	var health []byte
	waitFor(t, "the HEALTHCHECK command to see web active", 20*time.Second, func() bool {
		cmd := exec.Command(circusctlBin, "--endpoint", fmt.Sprintf("tcp://127.0.0.1:%d", ctl), "--timeout", "3", "status")
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uidNobody, Gid: uidNobody}}
		var err error
		health, err = cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("the HEALTHCHECK command: %v\n%s", err, health)
		}
		return strings.Contains(string(health), "web: active")
	})

	var arb int
	b, _ = os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", p.cmd.Process.Pid, p.cmd.Process.Pid))
	if arb, _ = strconv.Atoi(strings.TrimSpace(string(b))); arb == 0 {
		t.Fatalf("no arbiter under unshare: %q", b)
	}
	if uid := procUID(t, arb); uid != uidNobody {
		t.Errorf("the arbiter runs as uid %d, want nobody", uid)
	}
	if err := syscall.Kill(arb, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.stop(t, 0) // waits for the exit, which must be 0
	out := p.out.String()
	if n := len(regexp.MustCompile(`msg=reaped watcher=web pid=\d+ exit_code=0\b`).FindAllString(out, -1)); n != 4 {
		t.Errorf("%d of 4 workers drained and exited 0 on SIGTERM:\n%s", n, out)
	}
}

// procUID is the real uid of process pid.
func procUID(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Uid:\s+(\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no Uid in /proc/%d/status", pid)
	}
	uid, _ := strconv.Atoi(string(m[1]))
	return uid
}

// As a container's PID 1, an arbiter whose critical watcher gives up exits
// 3, so that the container engine tells the service's failure from a
// clean stop (0) or an error (1).
func TestPID1CriticalExit3(t *testing.T) {
	testproc.NeedUnshare(t)
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, `[watcher:crashy]
cmd = WORKER exit 3
critical = true
flapping.attempts = 2
flapping.window = 30
flapping.retry_in = 0.2
flapping.max_retry = 1
`)
	p := startArbiterCmd(t, exec.Command("unshare", "--pid", "--fork", "--mount-proc", "--kill-child", arbiterBin, ini))
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Fatalf("unshare (and so the arbiter) exited with %v, want exit status 3:\n%s", err, p.out.String())
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the arbiter still runs 60s after its critical watcher started:\n%s", p.out.String())
	}
}
