package main_test

import (
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// startArbiterWith starts the arbiter on the config at path with env as its
// whole environment and, when groups is not nil, those supplementary
// groups, and waits for its control endpoint.
func startArbiterWith(t *testing.T, path string, env []string, groups []uint32) *ctlArbiter {
	t.Helper()
	cmd := exec.Command(arbiterBin, path)
	cmd.Env = env
	if groups != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 0, Gid: 0, Groups: groups}}
	}
	p := startArbiterCmd(t, cmd)
	a := &ctlArbiter{arbiterProc: p, dir: filepath.Dir(path), ini: path, endpoint: controlEndpoint(path)}
	waitFor(t, "the control endpoint", 20*time.Second, func() bool {
		if a.c == nil {
			c, err := control.Dial(a.endpoint, time.Second)
			if err != nil {
				return false
			}
			a.c = c
			t.Cleanup(func() { c.Close() })
		}
		_, err := a.try("list", nil)
		return err == nil
	})
	return a
}

// The variables through which systemd tells a service about itself
// (systemd.exec(5), "Environment Variables Set or Propagated by the Service
// Manager"), as an arbiter run as a service finds them.
var serviceEnv = map[string]string{
	"NOTIFY_SOCKET":                "", // set to a real socket below
	"WATCHDOG_USEC":                "5000000",
	"WATCHDOG_PID":                 "1",
	"LISTEN_FDS":                   "2",
	"LISTEN_PID":                   "1",
	"LISTEN_FDNAMES":               "a:b",
	"INVOCATION_ID":                "0123456789abcdef0123456789abcdef",
	"SYSTEMD_EXEC_PID":             "1",
	"MAINPID":                      "1",
	"MANAGERPID":                   "1",
	"PIDFILE":                      "/run/arbiter.pid",
	"FDSTORE":                      "16",
	"SERVICE_RESULT":               "success",
	"EXIT_CODE":                    "exited",
	"EXIT_STATUS":                  "0",
	"MONITOR_SERVICE_RESULT":       "exit-code",
	"MONITOR_EXIT_CODE":            "exited",
	"MONITOR_EXIT_STATUS":          "1",
	"MONITOR_INVOCATION_ID":        "fedcba9876543210fedcba9876543210",
	"MONITOR_UNIT":                 "other.service",
	"TRIGGER_UNIT":                 "arbiter.path",
	"TRIGGER_PATH":                 "/srv/trigger",
	"TRIGGER_TIMER_REALTIME_USEC":  "1700000000000000",
	"TRIGGER_TIMER_MONOTONIC_USEC": "1000000",
	"MEMORY_PRESSURE_WATCH":        "/sys/fs/cgroup/system.slice/arbiter.service/memory.pressure",
	"MEMORY_PRESSURE_WRITE":        "c29tZQ==",
	"REMOTE_ADDR":                  "192.0.2.1",
	"REMOTE_PORT":                  "4242",
}

// What the service manager passes that is configuration a worker may use,
// and an application's own variable that merely looks like LISTEN_*.
var passedEnv = map[string]string{
	"RUNTIME_DIRECTORY":     "/run/arbiter",
	"STATE_DIRECTORY":       "/var/lib/arbiter",
	"CREDENTIALS_DIRECTORY": "/run/credentials/arbiter.service",
	"JOURNAL_STREAM":        "8:12345",
	"LOG_NAMESPACE":         "apps",
	"LISTEN_PORT":           "8080",
}

// Issue 15: an arbiter run as a systemd service (its NOTIFY_SOCKET,
// WATCHDOG_*, LISTEN_*, INVOCATION_ID... in its environment) passes none
// of that to its workers, even with copy_env; a worker with ready = notify
// gets its own NOTIFY_SOCKET, one with sockets its own LISTEN_*, and what a
// watcher's [env] names explicitly arrives.
func TestServiceEnvDoesNotReachWorkers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	// A real notification socket, as systemd's: nothing must reach it.
	notifyPath := filepath.Join(dir, "systemd-notify")
	sd, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()

	env := os.Environ()
	for k, v := range serviceEnv {
		if k == "NOTIFY_SOCKET" {
			v = notifyPath
		}
		env = append(env, k+"="+v)
	}
	for k, v := range passedEnv {
		env = append(env, k+"="+v)
	}
	state := func(name string) string { return filepath.Join(dir, name+".json") }
	ini := fmt.Sprintf(`[socket:web]
host = 127.0.0.1
port = 0

[watcher:plain]
cmd = WORKER describe %s
copy_env = true

[watcher:web]
cmd = WORKER describe %s
copy_env = true
use_sockets = true

[watcher:explicit]
cmd = WORKER describe %s
copy_env = true

[env:explicit]
INVOCATION_ID = mine
NOTIFY_SOCKET = $NOTIFY_SOCKET

[watcher:notify]
cmd = /bin/sh -c "WORKER describe %[4]s & exec WORKER readywhen %[4]s"
copy_env = true
ready = notify
watchdog_sec = 3600
`, state("plain"), state("web"), state("explicit"), state("notify"))
	path := filepath.Join(dir, "circus.ini")
	writeINI(t, path, ini)
	a := startArbiterWith(t, path, env, nil)

	read := func(name string) testproc.State {
		var st testproc.State
		waitFor(t, name+"'s report", 20*time.Second, func() bool {
			var ok bool
			st, ok = testproc.ReadState(state(name))
			return ok
		})
		return st
	}
	for _, name := range []string{"plain", "web", "explicit", "notify"} {
		st := read(name)
		for _, k := range slices.Sorted(maps.Keys(passedEnv)) {
			v := passedEnv[k]
			if got, ok := st.Env[k]; !ok || got != v {
				t.Errorf("%s: worker's %s = %q (set: %v), want the arbiter's %q", name, k, got, ok, v)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(serviceEnv)) {
			want, set := "", false
			switch {
			case name == "web" && k == "LISTEN_FDS":
				want, set = "1", true
			case name == "web" && k == "LISTEN_FDNAMES":
				want, set = "web", true
			case name == "web" && k == "LISTEN_PID":
				want, set = strconv.Itoa(st.Pid), true
			case name == "explicit" && k == "INVOCATION_ID":
				want, set = "mine", true
			case name == "explicit" && k == "NOTIFY_SOCKET":
				want, set = notifyPath, true // asked for by name
			case name == "notify" && k == "WATCHDOG_USEC":
				want, set = "3600000000", true
			case name == "notify" && k == "NOTIFY_SOCKET":
				got := st.Env[k]
				if got == "" || got == notifyPath {
					t.Errorf("notify: worker's NOTIFY_SOCKET = %q, want one of its own", got)
				}
				continue
			}
			if got, ok := st.Env[k]; ok != set || got != want {
				t.Errorf("%s: worker's %s = %q (set: %v), want %q (set: %v)", name, k, got, ok, want, set)
			}
		}
	}
	// The worker's READY=1 reached the arbiter, through its own socket.
	waitFor(t, "watcher notify active", 20*time.Second, func() bool { return a.status(t, "notify") == "active" })
	if err := sd.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if n, _, err := sd.ReadFromUnix(buf); err == nil {
		t.Errorf("the arbiter's own NOTIFY_SOCKET got %q from a worker", buf[:n])
	}
	a.stop(t, syscall.SIGTERM)
}

// rootGroupList is getgrouplist("root", gid), read from the group database
// through getent: gid and every group that lists root as a member.
func rootGroupList(t *testing.T, gid uint32) []uint32 {
	t.Helper()
	out, err := exec.Command("getent", "group").Output()
	if err != nil {
		t.Fatalf("getent group: %v", err)
	}
	gs := []uint32{gid}
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 4 || !slices.Contains(strings.Split(f[3], ","), "root") {
			continue
		}
		if g, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			gs = append(gs, uint32(g))
		}
	}
	slices.Sort(gs)
	return slices.Compact(gs)
}

// groupsOf reads pid's supplementary groups from /proc/PID/status.
func groupsOf(t *testing.T, pid int) []uint32 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	var gs []uint32
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			gs = []uint32{}
			for _, s := range strings.Fields(rest) {
				g, _ := strconv.ParseUint(s, 10, 32)
				gs = append(gs, uint32(g))
			}
		}
	}
	slices.Sort(gs)
	return gs
}

// Issue 15: an arbiter whose own supplementary groups are more than root's
// leaves them to a watcher that names neither uid nor gid, and gives
// exactly initgroups(user, gid) to one that names either, root included.
func TestWorkerGroupsFromArbiter(t *testing.T) {
	t.Parallel()
	testproc.NeedRoot(t, "start the arbiter with other groups")
	// daemon (1) and staff (50) are in every Debian's base group file.
	own := []uint32{0, 1, 50}
	dir := t.TempDir()
	path := filepath.Join(dir, "circus.ini")
	writeINI(t, path, `[watcher:own]
cmd = WORKER sleep

[watcher:root]
cmd = WORKER sleep
uid = root

[watcher:gid]
cmd = WORKER sleep
gid = 50
`)
	a := startArbiterWith(t, path, os.Environ(), own)
	for _, tt := range []struct {
		name string
		want []uint32
	}{
		{"own", own},
		{"root", rootGroupList(t, 0)},
		{"gid", rootGroupList(t, 50)},
	} {
		pid := a.waitPids(t, tt.name, 1)[0]
		var got []uint32
		waitFor(t, tt.name+"'s exec", 10*time.Second, func() bool {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			got = groupsOf(t, pid)
			return strings.HasSuffix(strings.TrimRight(string(b), "\x00"), "sleep")
		})
		if !slices.Equal(got, tt.want) {
			t.Errorf("watcher %s: worker's groups = %v, want %v", tt.name, got, tt.want)
		}
	}
	a.stop(t, syscall.SIGTERM)
}

// copyExec copies the executable at src into dir, for a user who cannot
// reach the directory the tests built it in.
func copyExec(t *testing.T, src, dir string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// An arbiter that is not root runs a watcher as its own user and group (no
// setgroups is asked for: its groups already are that user's), and one
// whose groups it cannot set fails to spawn, saying so: it never runs with
// the arbiter's groups instead.
func TestUnprivilegedArbiterGroups(t *testing.T) {
	t.Parallel()
	testproc.NeedRoot(t, "start the arbiter as nobody")
	const nobody, nogroup = 65534, 65534
	dir, err := os.MkdirTemp("", "unprivileged")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	bin := copyExec(t, arbiterBin, dir)
	w := copyExec(t, worker, dir)
	path := filepath.Join(dir, "circus.ini")
	writeINI(t, path, strings.ReplaceAll(`[watcher:self]
cmd = W sleep
uid = nobody
gid = nogroup

[watcher:other]
cmd = W sleep
uid = nobody
gid = daemon
max_retry = 1
`, "W", w))
	cmd := exec.Command(bin, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nogroup, Groups: []uint32{nogroup}}}
	p := startArbiterCmd(t, cmd)
	const refused = "setgroups [1]: operation not permitted"
	waitFor(t, "the refused setgroups in the log", 20*time.Second, func() bool { return strings.Contains(p.out.String(), refused) })
	a := &ctlArbiter{arbiterProc: p, dir: dir, ini: path, endpoint: controlEndpoint(path)}
	waitFor(t, "the control endpoint", 20*time.Second, func() bool {
		if a.c == nil {
			c, err := control.Dial(a.endpoint, time.Second)
			if err != nil {
				return false
			}
			a.c = c
			t.Cleanup(func() { c.Close() })
		}
		_, err := a.try("list", nil)
		return err == nil
	})
	pid := a.waitPids(t, "self", 1)[0]
	if got := groupsOf(t, pid); !slices.Equal(got, []uint32{nogroup}) {
		t.Errorf("watcher self: worker's groups = %v, want [%d]", got, nogroup)
	}
	if ps := a.pids(t, "other"); len(ps) != 0 {
		t.Errorf("watcher other has workers %v, want none", ps)
	}
	a.stop(t, syscall.SIGTERM)
}
