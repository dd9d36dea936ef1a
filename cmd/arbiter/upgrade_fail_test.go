package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// An upgrade that cannot go ahead ends where it began (issue 18): the old
// image runs on (its /proc/PID/exe unchanged), with every worker, the
// runtime changes, the load served without a failure, no output line
// lost, the events numbered on without a gap; circusctl's error, the log
// and an arbiter.upgrade_failed event say why, naming the binary. The
// binaries here never get as far as the exec: one exits at once without
// saying which hand-over formats it reads (an exec of it would end the
// arbiter), one says it reads none the old image writes and exits 1, one
// is not there, one is not executable; and SIGUSR2 with the first
// installed over the arbiter's own binary. (The way back after an exec
// whose new image then fails is the lead's test.)
func TestUpgradeFailureKeepsOldImage(t *testing.T) {
	bins, err := upgradeBuilds()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "arbiter")
	oldIno := installBinary(t, bins[0], bin)
	exitsAtOnce := filepath.Join(dir, "exits-at-once")
	writeScript(t, exitsAtOnce, "exit 0\n")
	refuses := filepath.Join(dir, "refuses")
	writeScript(t, refuses, "echo 'hand-over formats 900-901'\necho 'refuses: unknown hand-over format' >&2\nexit 1\n")
	notExec := filepath.Join(dir, "not-executable")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startUpgradeRig(t, dir, bin)
	r.runtimeChanges(t)
	b := r.record(t)

	for _, binary := range []string{exitsAtOnce, refuses, filepath.Join(dir, "not-there"), notExec} {
		logFrom := len(r.out.String())
		out, errOut, code := circusctl(t, r.endpoint, "upgrade", "--binary", binary)
		if code == 0 || !strings.Contains(errOut, binary) {
			t.Errorf("circusctl upgrade --binary %s: exit %d, stdout %q, stderr %q; want a failure naming the binary", binary, code, out, errOut)
		}
		r.failed(t, logFrom, binary)
		r.checkKept(t, b, oldIno)
	}

	installBinary(t, exitsAtOnce, bin)
	logFrom := len(r.out.String())
	if err := r.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	r.failed(t, logFrom, bin)
	r.checkKept(t, b, oldIno)

	r.killAndReplace(t, b)
	r.load.served(t, "after the failed upgrades", 200)
	r.load.stop()
	r.load.check(t, "HTTP clients through the failed upgrades")
	for _, f := range [][2]string{{r.ticks, "tick"}, {r.tocks, "tock"}} {
		if _, err := numbered(f[0], f[1]); err != nil {
			t.Errorf("the ticker's output through the failed upgrades: %v", err)
		}
	}
	for _, s := range r.subs {
		checkSeqs(t, s)
	}
	pids := append(r.pids(t, "web"), r.pids(t, "extra")...)
	r.stop(t, syscall.SIGTERM)
	waitFor(t, "every worker stopped with the old image", 20*time.Second, func() bool { return allGone(pids) })
}

// failed waits for the log line "upgrade failed" naming binary, then for
// the arbiter.upgrade_failed event, with a reason naming it, at every
// subscriber.
func (r *upgradeRig) failed(t *testing.T, logFrom int, binary string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^.*msg="upgrade failed\b.*$`)
	var line string
	waitFor(t, `the log line "upgrade failed" for `+binary, upgradeTimeout, func() bool {
		line = re.FindString(r.out.String()[logFrom:])
		return line != ""
	})
	if !strings.Contains(line, binary) {
		t.Errorf("log line %q does not name the binary %s", line, binary)
	}
	for _, s := range r.subs {
		waitFor(t, s.name+" to get arbiter.upgrade_failed for "+binary, 20*time.Second, func() bool {
			for _, fr := range s.list() {
				var ev struct{ Reason string }
				if fr[0] == "arbiter.upgrade_failed" && json.Unmarshal([]byte(fr[1]), &ev) == nil && strings.Contains(ev.Reason, binary) {
					return true
				}
			}
			return false
		})
	}
}
