package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// upgradeTarget starts an arbiter running one worker that describes
// itself, and returns it with the worker's pid.
func upgradeTarget(t *testing.T) (p *arbiterProc, endpoint string, pid int) {
	t.Helper()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf("[watcher:a]\ncmd = WORKER describe %s/a.json\n", dir))
	p = startArbiter(t, ini)
	endpoint = controlEndpoint(ini)
	waitFor(t, "worker a", 10*time.Second, func() bool { return readPid(filepath.Join(dir, "a.json")) > 0 })
	return p, endpoint, readPid(filepath.Join(dir, "a.json"))
}

// unchanged checks that the arbiter still runs its first binary, that its
// worker is the same and alive, and that it answers.
func unchanged(t *testing.T, p *arbiterProc, endpoint string, pid int) {
	t.Helper()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.cmd.Process.Pid))
	if err != nil || exe != arbiterBin {
		t.Errorf("/proc/PID/exe = %q (%v), want the first binary %s", exe, err, arbiterBin)
	}
	if gone(pid) {
		t.Errorf("worker %d died", pid)
	}
	out, _, code := circusctl(t, endpoint, "list", "a")
	if code != 0 || !strings.Contains(out, fmt.Sprint(pid)) {
		t.Errorf("circusctl list a = %q (exit %d), want worker %d", out, code, pid)
	}
}

// A new binary that the old one's check refuses (none at that path, one
// that fails --check-upgrade, one that reads other hand-over formats, a
// relative path) is never executed: circusctl says why and exits non-zero,
// and nothing changes.
func TestUpgradeCheckRefuses(t *testing.T) {
	t.Parallel()
	p, endpoint, pid := upgradeTarget(t)
	dir := t.TempDir()
	future := filepath.Join(dir, "future")
	if err := os.WriteFile(future, []byte("#!/bin/sh\necho ringmaster-handover 7 9 v9.0.0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ binary, why string }{
		{filepath.Join(dir, "missing"), "no such file"},
		{"/bin/false", "--check-upgrade: exit status 1"},
		{"/bin/true", "not a Ringmaster arbiter"},
		{future, "reads hand-over formats 7 to 9, not this one's 1"},
	} {
		_, stderr, code := circusctl(t, endpoint, "upgrade", "--binary", c.binary)
		if code == 0 || !strings.Contains(stderr, c.why) {
			t.Errorf("upgrade --binary %s: exit %d, stderr %q; want an error saying %q", c.binary, code, stderr, c.why)
		}
	}
	unchanged(t, p, endpoint, pid)
	if strings.Contains(p.out.String(), "upgraded in place") {
		t.Error("the arbiter says it upgraded")
	}
	p.stop(t, syscall.SIGTERM)
}

// A binary that passes the check but gives the hand-over up once executed
// (built here to do so, as one that cannot restore the state would) sends
// the arbiter back to its old binary, kept open for that, with the same
// state: same pid, same worker, still answering; circusctl and the log say
// why.
func TestUpgradeWayBack(t *testing.T) {
	t.Parallel()
	refusing := filepath.Join(t.TempDir(), "arbiter-refusing")
	build := exec.Command("go", "build", "-ldflags", `-X "main.refuseHandover=simulated restore failure"`, "-o", refusing, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	p, endpoint, pid := upgradeTarget(t)
	_, stderr, code := circusctl(t, endpoint, "upgrade", "--binary", refusing)
	if code == 0 || !strings.Contains(stderr, "simulated restore failure") {
		t.Fatalf("upgrade to a binary that gives up: exit %d, stderr %q; want the reason", code, stderr)
	}
	unchanged(t, p, endpoint, pid)
	if !strings.Contains(p.out.String(), "the old binary is back") {
		t.Errorf("log without the way back:\n%s", p.out.String())
	}
	// The old image upgrades again, to a good binary, and stops cleanly.
	if out, stderr, code := circusctl(t, endpoint, "upgrade"); code != 0 || !strings.Contains(out, "upgraded") {
		t.Fatalf("upgrade after the way back: exit %d, %q %q", code, out, stderr)
	}
	if gone(pid) {
		t.Errorf("worker %d died in the second upgrade", pid)
	}
	p.stop(t, syscall.SIGTERM)
}

// An upgrade keeps the configuration in effect, whatever the file says by
// then: a file changed on disk is not applied (that is reloadconfig's
// job), unless the upgrade asks for it with --reloadconfig.
func TestUpgradeKeepsConfigUnlessAsked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 1\n")
	p := startArbiter(t, ini)
	endpoint := controlEndpoint(ini)
	count := func() int {
		out, _, code := circusctl(t, endpoint, "numprocesses", "a")
		if code != 0 {
			return -1
		}
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n
	}
	waitFor(t, "the arbiter", 20*time.Second, func() bool { return count() == 1 })
	writeINI(t, ini, "[watcher:a]\ncmd = WORKER sleep\nnumprocesses = 2\n")
	if out, stderr, code := circusctl(t, endpoint, "upgrade"); code != 0 {
		t.Fatalf("upgrade: exit %d, %q %q", code, out, stderr)
	}
	if n := count(); n != 1 {
		t.Errorf("numprocesses %d after a plain upgrade, want the 1 in effect (the file's 2 is not applied)", n)
	}
	if out, stderr, code := circusctl(t, endpoint, "upgrade", "--reloadconfig"); code != 0 {
		t.Fatalf("upgrade --reloadconfig: exit %d, %q %q", code, out, stderr)
	}
	waitFor(t, "the file's numprocesses after upgrade --reloadconfig", 20*time.Second, func() bool { return count() == 2 })
	p.stop(t, syscall.SIGTERM)
}

// The way back from a new image that gave up late, after it had taken the
// listeners (their fds are gone) and adopted the sockets: the old image
// binds its endpoints anew and takes the sockets back, with the same
// worker, and answers on the same control endpoint.
func TestUpgradeWayBackLate(t *testing.T) {
	t.Parallel()
	refusing := filepath.Join(t.TempDir(), "arbiter-refusing-late")
	build := exec.Command("go", "build", "-ldflags", `-X "main.refuseLate=simulated late failure"`, "-o", refusing, ".")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf("[watcher:a]\ncmd = WORKER describe %s/a.json\nuse_sockets = true\n\n[socket:s]\npath = %s/s.sock\n", dir, dir))
	p := startArbiter(t, ini)
	endpoint := controlEndpoint(ini)
	waitFor(t, "worker a", 10*time.Second, func() bool { return readPid(filepath.Join(dir, "a.json")) > 0 })
	pid := readPid(filepath.Join(dir, "a.json"))
	_, stderr, code := circusctl(t, endpoint, "upgrade", "--binary", refusing)
	if code == 0 || !strings.Contains(stderr, "simulated late failure") {
		t.Fatalf("upgrade to a binary that gives up late: exit %d, stderr %q; want the reason", code, stderr)
	}
	unchanged(t, p, endpoint, pid)
	if !strings.Contains(p.out.String(), "the old binary is back") {
		t.Errorf("log without the way back:\n%s", p.out.String())
	}
	if out, _, code := circusctl(t, endpoint, "listsockets"); code != 0 || !strings.Contains(out, "s.sock") {
		t.Errorf("listsockets after the way back = %q (exit %d), want the socket", out, code)
	}
	p.stop(t, syscall.SIGTERM)
}
