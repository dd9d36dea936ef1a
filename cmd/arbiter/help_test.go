package main_test

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// --help and -h print the usage, every flag, the signals, the exit codes
// and where the documentation is, on stdout, and exit 0; a command line
// that does not parse prints a short usage on stderr and exits 2.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, arg := range []string{"--help", "-h", "-help"} {
		t.Run(arg, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr strings.Builder
			cmd := exec.Command(arbiterBin, arg)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Fatalf("arbiter %s: %v, stderr %q; want exit 0 and nothing on stderr", arg, err, stderr.String())
			}
			out := stdout.String()
			for _, want := range []string{
				"usage: arbiter [flags] CONFIG\n",
				"--validate CONFIG", "--log-level", "--log-output", "--pidfile", "--version", "--help",
				"\n  HUP ", "\n  USR1 ", "\n  TERM, INT, QUIT ", "\n  USR2 ",
				"\n  0  ", "\n  1  ", "\n  2  ", "\n  3  ",
				"READY=1", "docs/deploy.md", "https://github.com/ringmaster-dev/ringmaster/tree/main/docs",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("arbiter %s does not say %q:\n%s", arg, want, out)
				}
			}
			for _, line := range strings.Split(out, "\n") {
				if len(line) > 80 {
					t.Errorf("help line of %d columns, want at most 80: %q", len(line), line)
				}
			}
		})
	}
	for _, args := range [][]string{{"--no-such-flag", "x.ini"}, {}, {"a.ini", "b.ini"}} {
		code, out := runToExit(t, args...)
		if code != 2 || !strings.Contains(out, "usage: arbiter [flags] CONFIG\n") || !strings.Contains(out, "arbiter --help") {
			t.Errorf("arbiter %q: exit %d, output %q; want 2 and the short usage", args, code, out)
		}
	}
}

// SIGUSR2 upgrades the arbiter in place: same pid, the worker kept (not
// killed, not replaced), and the arbiter still answers and stops cleanly.
func TestSIGUSR2Upgrades(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf("[watcher:a]\ncmd = WORKER describe %s/a.json\n", dir))
	p := startArbiter(t, ini)
	waitFor(t, "worker a", 10*time.Second, func() bool { return readPid(filepath.Join(dir, "a.json")) > 0 })
	pid := readPid(filepath.Join(dir, "a.json"))
	if err := p.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "upgraded in place", 10*time.Second, func() bool { return strings.Contains(p.out.String(), "upgraded in place") })
	if gone(pid) {
		t.Errorf("worker %d died of the arbiter's upgrade", pid)
	}
	p.stop(t, syscall.SIGTERM) // the new image stops cleanly
	if !gone(pid) {
		t.Errorf("worker %d outlived the upgraded arbiter's stop", pid)
	}
}
