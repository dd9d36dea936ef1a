package main_test

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// quit --waiting answers once every worker is stopped, and the answer
// arrives although the arbiter exits right after it: the control endpoint
// drains its replies before it closes.
func TestQuitWaiting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, "[watcher:w]\ncmd = WORKER describe "+dir+"/w.json\nnumprocesses = 1\n")
	p := startArbiter(t, ini)
	waitFor(t, "the worker", 10*time.Second, func() bool { return readPid(filepath.Join(dir, "w.json")) > 0 })
	pid := readPid(filepath.Join(dir, "w.json"))

	out, err := exec.Command(circusctlBin, "--endpoint", controlEndpoint(ini), "--timeout", "20", "quit", "--waiting").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("circusctl quit --waiting: %v, output %q; want exit 0 and ok", err, out)
	}
	if !gone(pid) {
		t.Errorf("worker %d still alive when quit --waiting answered", pid)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("arbiter exited with %v after quit, want 0", err)
		}
		p.done <- err
	case <-time.After(20 * time.Second):
		t.Fatal("arbiter still running 20s after quit")
	}
}
