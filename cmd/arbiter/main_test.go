package main_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

var (
	arbiterBin   string
	circusctlBin string
	worker       string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "arbiter-cmd-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		arbiterBin = filepath.Join(dir, "arbiter")
		if b, err := exec.Command("go", "build", "-o", arbiterBin, ".").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, b)
			return 1
		}
		circusctlBin = filepath.Join(dir, "circusctl")
		if b, err := exec.Command("go", "build", "-o", circusctlBin, "../circusctl").CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go build circusctl: %v\n%s", err, b)
			return 1
		}
		if worker, err = testproc.Build(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// writeINI writes a test config. One without a [circus] section gets one,
// at the end so that line numbers hold, putting the event endpoint on a
// free port: tests run in parallel, and a developer may run Circus itself.
// For the same reason a config without a control endpoint gets
// controlEndpoint(path).
func writeINI(t *testing.T, path, ini string) {
	t.Helper()
	if !strings.Contains(ini, "[circus]") {
		ini += "\n[circus]\npubsub_endpoint = tcp://127.0.0.1:0\n"
	}
	if !regexp.MustCompile(`(?m)^endpoint\s*=`).MatchString(ini) {
		ini = strings.Replace(ini, "[circus]\n", "[circus]\nendpoint = "+controlEndpoint(path)+"\n", 1)
	}
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(ini, "WORKER", worker)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// controlEndpoint is the control endpoint writeINI gives the config at
// path: an ipc socket beside it.
func controlEndpoint(path string) string {
	return "ipc://" + filepath.Join(filepath.Dir(path), "control.sock")
}

// runToExit runs the arbiter with args and returns its exit code and output.
func runToExit(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(arbiterBin, args...)
	var out testproc.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode(), out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0, out.String()
	case <-time.After(20 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("arbiter %v still running after 20s; output:\n%s", args, out.String())
		return 0, ""
	}
}

// Every bad configuration exits 1 with a message naming file, line,
// section and key, and starts nothing.
func TestBadConfigsExit1(t *testing.T) {
	bad, err := filepath.Glob("../../config/testdata/bad/*.ini")
	if err != nil || len(bad) < 15 {
		t.Fatalf("want at least 15 bad configs in config/testdata/bad, found %d (%v)", len(bad), err)
	}
	for _, path := range bad {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			code, out := runToExit(t, path)
			if code != 1 {
				t.Errorf("exit code = %d, want 1; output:\n%s", code, out)
			}
			if !strings.Contains(out, "arbiter: ") || !strings.Contains(out, filepath.Base(path)+":") {
				t.Errorf("output does not name the file:\n%s", out)
			}
		})
	}
}

// Problems found only when the arbiter starts (a port in use, a socket file
// in the way) also exit 1 naming file, line and key, before any worker runs.
func TestStartupFailuresExit1(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	stale := filepath.Join(dir, "stale.sock")
	if err := os.WriteFile(stale, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ini, want string
	}{
		{"port in use", fmt.Sprintf("[socket:web]\nhost = 127.0.0.1\nport = %d\n\n[watcher:web]\ncmd = WORKER describe %s/started.json\nuse_sockets = true\n", port, dir),
			fmt.Sprintf(`test.ini:3: [socket:web] port: bind socket "web" 127.0.0.1:%d: address already in use`, port)},
		// writeINI inserts the control endpoint as line 2.
		{"httpd port in use", fmt.Sprintf("[circus]\npubsub_endpoint = tcp://127.0.0.1:0\nhttpd = true\nhttpd_port = %d\n\n[watcher:web]\ncmd = WORKER describe %s/started.json\n", port, dir),
			"test.ini:5: [circus] httpd_port: listen tcp "},
		{"unix path taken", fmt.Sprintf("[socket:web]\npath = %s\n\n[watcher:web]\ncmd = WORKER describe %s/started.json\nuse_sockets = true\n", stale, dir),
			"test.ini:2: [socket:web] path: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "test.ini")
			writeINI(t, path, tt.ini)
			code, out := runToExit(t, path)
			if code != 1 || !strings.Contains(out, tt.want) {
				t.Errorf("exit code %d, output:\n%s\nwant exit 1 and %q", code, out, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "started.json")); err == nil {
				t.Errorf("a worker started although the arbiter failed to start")
			}
		})
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.ini")
	writeINI(t, good, "[watcher:web]\ncmd = WORKER sleep\nnumprocess = 2\n")
	code, out := runToExit(t, "--validate", good)
	if code != 0 || !strings.Contains(out, "good.ini:3: [watcher:web] numprocess:") || !strings.Contains(out, "did you mean numprocesses?") {
		t.Errorf("--validate good.ini: exit %d, output:\n%s\nwant exit 0 with a typo warning", code, out)
	}
	bad := filepath.Join(dir, "bad.ini")
	writeINI(t, bad, "[watcher:a]\nnumprocesses = ten\n\n[watcher:b]\ncmd = x\nstop_signal = SIGNOPE\n")
	code, out = runToExit(t, "--validate", bad)
	for _, want := range []string{"bad.ini:1: [watcher:a] cmd:", `bad.ini:2: [watcher:a] numprocesses: "ten"`, `bad.ini:6: [watcher:b] stop_signal: "SIGNOPE"`} {
		if !strings.Contains(out, want) {
			t.Errorf("--validate bad.ini output lacks %q:\n%s", want, out)
		}
	}
	if code != 1 {
		t.Errorf("--validate bad.ini: exit code %d, want 1", code)
	}
}

// arbiterProc is a running arbiter binary.
type arbiterProc struct {
	cmd  *exec.Cmd
	out  *testproc.Buffer
	done chan error
}

func startArbiter(t *testing.T, args ...string) *arbiterProc {
	t.Helper()
	return startArbiterCmd(t, exec.Command(arbiterBin, args...))
}

// startArbiterCmd starts cmd, an arbiter or what execs one, in a process
// group of its own that the test's end kills, collecting its output; cmd's
// SysProcAttr, if set, is kept (with Setpgid added).
func startArbiterCmd(t *testing.T, cmd *exec.Cmd) *arbiterProc {
	t.Helper()
	p := &arbiterProc{cmd: cmd, out: &testproc.Buffer{}, done: make(chan error, 1)}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if p.cmd.SysProcAttr == nil {
		p.cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	p.cmd.SysProcAttr.Setpgid = true
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
		if t.Failed() {
			t.Logf("arbiter output:\n%s", p.out.String())
		}
	})
	return p
}

// stop sends sig and waits for a clean exit.
func (p *arbiterProc) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("arbiter exited with %v after %v, want 0", err, sig)
		}
		p.done <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("arbiter still running 30s after %v", sig)
	}
}

// waitFor polls cond until it holds, failing the test after d.
var waitFor = testproc.WaitFor

// readPid reads the pid from a describe report, 0 until there is one.
func readPid(path string) int {
	st, _ := testproc.ReadState(path)
	return st.Pid
}

var gone = testproc.Gone

// SIGHUP re-reads the file: a bad one changes nothing; a good one starts
// the new watcher and leaves the unchanged one alone. SIGINT then stops
// everything and removes the socket file and the pidfile.
func TestSIGHUPAndShutdown(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	sock := filepath.Join(dir, "web.sock")
	pidfile := filepath.Join(dir, "arbiter.pid")
	base := fmt.Sprintf(`[circus]
pidfile = %s
pubsub_endpoint = tcp://127.0.0.1:0
endpoint = %s

[socket:web]
path = %s

[watcher:a]
cmd = WORKER describe %s/a.json
use_sockets = true
`, pidfile, controlEndpoint(ini), sock, dir)
	writeINI(t, ini, base)
	p := startArbiter(t, ini)
	waitFor(t, "worker a", 10*time.Second, func() bool { return readPid(filepath.Join(dir, "a.json")) > 0 })
	pidA := readPid(filepath.Join(dir, "a.json"))
	if b, err := os.ReadFile(pidfile); err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(p.cmd.Process.Pid) {
		t.Errorf("pidfile = %q (%v), want the arbiter's pid %d", b, err, p.cmd.Process.Pid)
	}

	writeINI(t, ini, base+fmt.Sprintf("\n[watcher:b]\ncmd = WORKER describe %s/b.json\nnumprocesses = many\n", dir))
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the reload to be refused", 10*time.Second, func() bool {
		return strings.Contains(p.out.String(), "reload refused; keeping the running configuration")
	})
	if !strings.Contains(p.out.String(), `circus.ini:15: [watcher:b] numprocesses: \"many\" is not a number`) {
		t.Errorf("refused reload does not say why with file:line:\n%s", p.out.String())
	}

	writeINI(t, ini, base+fmt.Sprintf("\n[watcher:b]\ncmd = WORKER describe %s/b.json\n", dir))
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "worker b after a good reload", 10*time.Second, func() bool { return readPid(filepath.Join(dir, "b.json")) > 0 })
	pidB := readPid(filepath.Join(dir, "b.json"))
	if got := readPid(filepath.Join(dir, "a.json")); got != pidA || gone(pidA) {
		t.Errorf("unchanged watcher a was touched by the reload: pid %d -> %d (gone: %v)", pidA, got, gone(pidA))
	}

	p.stop(t, syscall.SIGINT)
	for _, pid := range []int{pidA, pidB} {
		if !gone(pid) {
			t.Errorf("worker %d outlived the arbiter", pid)
		}
	}
	for _, f := range []string{sock, pidfile} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind after shutdown", f)
		}
	}
}

// A killed arbiter takes its workers with it (the parent-death signal), so
// none is left holding the socket; Circus leaves them running as orphans.
func TestKilledArbiterTakesWorkers(t *testing.T) {
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf("[watcher:a]\ncmd = WORKER describe %s/a-$(circus.wid).json\nnumprocesses = 2\n", dir))
	p := startArbiter(t, ini)
	var pids []int
	waitFor(t, "2 workers", 10*time.Second, func() bool {
		pids = pids[:0]
		for _, f := range []string{"a-1.json", "a-2.json"} {
			if pid := readPid(filepath.Join(dir, f)); pid > 0 {
				pids = append(pids, pid)
			}
		}
		return len(pids) == 2
	})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.done
	p.done <- nil
	waitFor(t, "the workers to die with the arbiter", 10*time.Second, func() bool { return gone(pids[0]) && gone(pids[1]) })
}

func TestVersion(t *testing.T) {
	code, out := runToExit(t, "--version")
	if code != 0 || !strings.HasPrefix(out, "arbiter (Ringmaster) ") {
		t.Errorf("--version: exit %d, output %q", code, out)
	}
}
