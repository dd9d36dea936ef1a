package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// The in-place upgrade (issue 18), end to end, with real binaries: an
// arbiter built as upgradeV1 re-executes an upgradeV2 build of itself,
// through SIGUSR2 with the new binary installed over the old one, and
// through `circusctl upgrade --binary PATH`, while HTTP clients hammer a
// watcher, a worker writes a numbered line every 10 ms to files, ZeroMQ
// subscribers listen and, for SIGUSR2, the console is open in chromium.

// upgradeTimeout bounds an upgrade, from its request to the new image's
// log line; the target is 100 ms with 1000 workers.
const upgradeTimeout = 30 * time.Second

// upgradeRig is an arbiter of the upgrade tests, with what watches it.
type upgradeRig struct {
	*ctlArbiter
	bin          string // the path it was started from
	console      string // the console's URL
	load         *httpLoad
	subs         []*subscriber
	ticks, tocks string // the ticker's stdout and stderr files
}

// startUpgradeRig starts bin on a configuration of 4 HTTP workers on a
// socket, a ticker writing "tick N" and "tock N" every 10 ms to two files,
// the console and the events on fixed loopback ports, then a load of
// HTTP clients and the subscribers.
func startUpgradeRig(t *testing.T, dir, bin string) *upgradeRig {
	t.Helper()
	httpBin, err := httpworkerBin()
	if err != nil {
		t.Fatal(err)
	}
	httpPort, pubPort, consolePort := freePort(t), freePort(t), freePort(t)
	r := &upgradeRig{
		bin:     bin,
		console: fmt.Sprintf("http://127.0.0.1:%d/", consolePort),
		ticks:   filepath.Join(dir, "tick.log"),
		tocks:   filepath.Join(dir, "tock.log"),
	}
	pub := fmt.Sprintf("tcp://127.0.0.1:%d", pubPort)
	ini := filepath.Join(dir, "circus.ini")
	writeINI(t, ini, fmt.Sprintf(`[circus]
pubsub_endpoint = %s
httpd = true
httpd_host = 127.0.0.1
httpd_port = %d

[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = %s --fd $(circus.sockets.web) --drain 10s
numprocesses = 4
graceful_timeout = 15

[watcher:ticker]
cmd = WORKER tick 10ms
stdout_stream.class = FileStream
stdout_stream.filename = %s
stderr_stream.class = FileStream
stderr_stream.filename = %s
`, pub, consolePort, httpPort, httpBin, r.ticks, r.tocks))
	r.ctlArbiter = &ctlArbiter{arbiterProc: startArbiterCmd(t, exec.Command(bin, ini)), dir: dir, ini: ini, endpoint: controlEndpoint(ini)}
	r.redial(t)
	r.waitPids(t, "web", 4)
	r.waitPids(t, "ticker", 1)
	r.subs = subscribeAll(t, dir, pub)
	r.load = startLoad(t, fmt.Sprintf("http://127.0.0.1:%d/", httpPort), 4)
	r.load.served(t, "before the upgrade", 100)
	return r
}

// redial connects a new control client, once the endpoint answers: a
// client's connection does not outlive the image it was made to.
func (r *upgradeRig) redial(t *testing.T) {
	t.Helper()
	var c *control.Client
	waitFor(t, "the control endpoint to answer", 20*time.Second, func() bool {
		if c == nil {
			var err error
			if c, err = control.Dial(r.endpoint, time.Second); err != nil {
				return false
			}
			t.Cleanup(func() { c.Close() })
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := c.Call(ctx, "list", nil)
		return err == nil
	})
	r.c = c
}

// runtimeChanges makes changes at run time that an upgrade must keep: a
// watcher added (extra), resized (incr) and an option set. They also
// bring events to every subscriber, which are counted from the first one
// each gets (a subscriber joins a moment after it connects).
func (r *upgradeRig) runtimeChanges(t *testing.T) {
	t.Helper()
	ctlOK(t, r.endpoint, "add", "--start", "extra", worker+" sleep")
	r.waitPids(t, "extra", 1)
	timeout := 3
	waitFor(t, "every subscriber to get events", 20*time.Second, func() bool {
		for _, s := range r.subs {
			if len(s.list()) == 0 {
				timeout++ // each set is an "updated" event
				ctlOK(t, r.endpoint, "set", "extra", "graceful_timeout", strconv.Itoa(timeout))
				return false
			}
		}
		return true
	})
	r.call(t, "incr", map[string]any{"name": "extra", "nb": 1, "waiting": true})
	r.waitPids(t, "extra", 2)
	ctlOK(t, r.endpoint, "set", "web", "graceful_timeout", "12")
	// Nothing else happens until the upgrade: every subscriber has every
	// event once they all have the updated of web's set.
	waitFor(t, "the set's event at every subscriber", 20*time.Second, func() bool {
		last := r.subs[0].maxSeq()
		for _, s := range r.subs {
			if !s.seen("watcher.web.updated", 0) || s.maxSeq() != last {
				return false
			}
		}
		return true
	})
}

// preUpgrade is what the tests compare after an upgrade.
type preUpgrade struct {
	pid     int
	pids    map[string][]int // watcher -> workers
	ticks   int
	lastSeq uint64
}

// record reads what the upgrade must keep.
func (r *upgradeRig) record(t *testing.T) preUpgrade {
	t.Helper()
	b := preUpgrade{pid: r.cmd.Process.Pid, pids: map[string][]int{}, lastSeq: r.subs[0].maxSeq()}
	for _, name := range r.watchers(t) {
		b.pids[name] = r.pids(t, name)
	}
	b.ticks, _ = numbered(r.ticks, "tick")
	return b
}

// upgraded waits for the log line of the new image ("upgraded", with
// both versions) and for the control endpoint to answer again.
func (r *upgradeRig) upgraded(t *testing.T, logFrom int) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^.*msg="?upgraded\b.*$`)
	var line string
	waitFor(t, `the log line "upgraded"`, upgradeTimeout, func() bool {
		line = re.FindString(r.out.String()[logFrom:])
		return line != ""
	})
	if !strings.Contains(line, upgradeV1) || !strings.Contains(line, upgradeV2) {
		t.Errorf("log line %q does not name both versions, %s and %s", line, upgradeV1, upgradeV2)
	}
	r.redial(t)
}

// checkKept checks what an upgrade keeps: the arbiter's pid and every
// worker, the runtime changes; and that the process now runs newBin.
func (r *upgradeRig) checkKept(t *testing.T, b preUpgrade, newIno uint64) {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err
		t.Fatalf("the arbiter (pid %d) exited: %v", b.pid, err)
	default:
	}
	if got := exeInode(b.pid); got != newIno {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", b.pid))
		t.Errorf("/proc/%d/exe is %s (inode %d), want the new binary (inode %d)", b.pid, exe, got, newIno)
	}
	for name, pids := range b.pids {
		if got := ctlPids(t, r.endpoint, name); !sameSet(got, pids) {
			t.Errorf("circusctl list %s = %v after the upgrade, want the same workers %v", name, got, pids)
		}
		for _, pid := range pids {
			if gone(pid) || procPPid(pid) != b.pid {
				t.Errorf("worker %d of %s: gone %v, parent %d, want alive, a child of %d", pid, name, gone(pid), procPPid(pid), b.pid)
			}
		}
	}
	if got := strings.TrimSpace(ctlOK(t, r.endpoint, "get", "web", "graceful_timeout")); !strings.Contains(got, "12") {
		t.Errorf("circusctl get web graceful_timeout = %q after the upgrade, want the 12 set before it", got)
	}
	if got := ctlOK(t, r.endpoint, "status", "extra"); strings.TrimSpace(got) != "active" {
		t.Errorf("circusctl status extra = %q after the upgrade, want active", got)
	}
}

// killAndReplace SIGKILLs a worker of extra: the new image reaps it and
// starts another, and every subscriber hears of it.
func (r *upgradeRig) killAndReplace(t *testing.T, b preUpgrade) (killed, fresh int) {
	t.Helper()
	killed = b.pids["extra"][0]
	if err := syscall.Kill(killed, syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL worker %d of extra: %v (it did not outlive the upgrade)", killed, err)
	}
	waitFor(t, "the killed worker replaced", 20*time.Second, func() bool {
		ps := r.pids(t, "extra")
		fresh = 0
		for _, p := range ps {
			if p != killed && p != b.pids["extra"][1] {
				fresh = p
			}
		}
		return len(ps) == 2 && fresh != 0 && gone(killed)
	})
	if ppid := procPPid(fresh); ppid != b.pid {
		t.Errorf("the new worker %d is a child of %d, want the arbiter %d", fresh, ppid, b.pid)
	}
	for _, s := range r.subs {
		waitFor(t, s.name+" to get the reap and the spawn", 20*time.Second, func() bool {
			return s.seen("watcher.extra.reap", killed) && s.seen("watcher.extra.spawn", fresh)
		})
	}
	return killed, fresh
}

// checkAfter checks what must hold once the new image runs: no request
// failed, no output line lost or split, every event at every subscriber,
// numbered on, the upgrade's own next if next (nothing else was published
// since b), and a clean stop of the new image.
func (r *upgradeRig) checkAfter(t *testing.T, b preUpgrade, next bool) {
	t.Helper()
	r.load.served(t, "after the upgrade", 200)
	r.load.stop()
	r.load.check(t, "HTTP clients through the upgrade")
	for _, f := range [][2]string{{r.ticks, "tick"}, {r.tocks, "tock"}} {
		waitFor(t, f[1]+" lines past the upgrade", 20*time.Second, func() bool {
			n, err := numbered(f[0], f[1])
			return err != nil || n > b.ticks+50
		})
		if _, err := numbered(f[0], f[1]); err != nil {
			t.Errorf("the ticker's output through the upgrade: %v", err)
		}
	}
	for _, s := range r.subs {
		seq, body := s.topicSeq("arbiter.upgrade")
		var ev struct {
			From, To string
			Pid      int
		}
		switch {
		case seq == 0:
			t.Errorf("%s did not get arbiter.upgrade; its events: %v", s.name, s.list())
		case seq <= b.lastSeq || next && seq != b.lastSeq+1:
			t.Errorf("%s: arbiter.upgrade has seq %d, want the next after the old image's last, %d", s.name, seq, b.lastSeq)
		case json.Unmarshal([]byte(body), &ev) != nil || ev.From != upgradeV1 || ev.To != upgradeV2 || ev.Pid != b.pid:
			t.Errorf("%s: arbiter.upgrade %s, want from %q to %q, pid %d", s.name, body, upgradeV1, upgradeV2, b.pid)
		}
		checkSeqs(t, s)
	}
	pids := append(r.pids(t, "web"), r.pids(t, "extra")...)
	r.stop(t, syscall.SIGTERM)
	waitFor(t, "every worker stopped with the new image", 20*time.Second, func() bool { return allGone(pids) })
}

// TestUpgradeBySIGUSR2 installs the new build over the binary the arbiter
// was started from, as a package manager does, and sends SIGUSR2, with the
// console open in a browser.
func TestUpgradeBySIGUSR2(t *testing.T) {
	bins, err := upgradeBuilds()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin", "arbiter")
	if err := os.Mkdir(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	oldIno := installBinary(t, bins[0], bin)
	r := startUpgradeRig(t, dir, bin)
	tab := openUpgradeConsole(t, r)
	r.runtimeChanges(t)
	b := r.record(t)
	if got := exeInode(b.pid); got != oldIno {
		t.Fatalf("/proc/%d/exe inode %d, want the old build's %d", b.pid, got, oldIno)
	}

	newIno := installBinary(t, bins[1], bin)
	logFrom := len(r.out.String())
	start := time.Now()
	if err := r.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	r.upgraded(t, logFrom)
	t.Logf("SIGUSR2 to the new image's control endpoint answering: %v", time.Since(start).Round(time.Millisecond))
	r.checkKept(t, b, newIno)
	_, fresh := r.killAndReplace(t, b)
	tab.afterUpgrade(t, b.pid, fresh)
	r.checkAfter(t, b, true)
}

// TestUpgradeByCircusctl upgrades to a binary at another path, named by
// `circusctl upgrade --binary`, which answers once the new image does.
func TestUpgradeByCircusctl(t *testing.T) {
	bins, err := upgradeBuilds()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	installBinary(t, bins[0], filepath.Join(dir, "arbiter"))
	newBin := filepath.Join(dir, "arbiter-next")
	newIno := installBinary(t, bins[1], newBin)
	r := startUpgradeRig(t, dir, filepath.Join(dir, "arbiter"))
	r.runtimeChanges(t)
	b := r.record(t)

	logFrom := len(r.out.String())
	start := time.Now()
	out, errOut, code := circusctl(t, r.endpoint, "upgrade", "--binary", newBin)
	if code != 0 {
		t.Fatalf("circusctl upgrade --binary %s: exit %d\nstdout: %s\nstderr: %s", newBin, code, out, errOut)
	}
	t.Logf("circusctl upgrade answered in %v: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	if want := fmt.Sprintf("upgraded: pid %d, %s -> %s, hand-over ", b.pid, upgradeV1, upgradeV2); !strings.HasPrefix(out, want) {
		t.Errorf("circusctl upgrade printed %q, want it to begin %q", out, want)
	}
	r.upgraded(t, logFrom)
	r.checkKept(t, b, newIno)
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", b.pid)); exe != newBin {
		t.Errorf("/proc/%d/exe = %q, want %q", b.pid, exe, newBin)
	}
	r.killAndReplace(t, b)
	// The upgrade command is audited (an event) before the upgrade's own.
	r.checkAfter(t, b, false)
}
