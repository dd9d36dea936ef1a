package arbiter

import (
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// needCgroups skips a test on a host where the arbiter makes no cgroup
// tree, unless CI is set (CI runs as root on a host with cgroups).
func needCgroups(t *testing.T, a *Arbiter) {
	t.Helper()
	if a.cg.tree != nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no cgroup tree: %s (CI runs as root on a host with cgroups)", a.cg.info.Reason)
	}
	t.Skipf("no cgroup tree: %s", a.cg.info.Reason)
}

// An arbiter upgraded in place keeps its cgroups: the new image (the test
// binary executed again by itself, same pid) adopts the tree, with its
// locks held throughout, so that another arbiter's sweep leaves it alone,
// and finds the worker in its own cgroup under the limits set before the
// exec (the OOM killer kills a memory hog there, and the oom event counts
// only the kill after the exec); its next worker's cgroup is numbered
// after it, a kill of the
// watcher's cgroup ends both, and the tree is gone when the arbiter
// closes its cgroups. The roles are in cgroup_handover_roles_internal_test.go.
func TestCgroupsAcrossExec(t *testing.T) {
	t.Parallel()
	report := t.TempDir() + "/report"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=out", reportEnv+"="+report)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// An arbiter of another test may reap it: waited for by its state,
	// then reaped here if it is still there.
	testproc.WaitFor(t, "the roles' end", 60*time.Second, func() bool { return testproc.DeadOrZombie(pid) })
	var ws unix.WaitStatus
	if _, err := unix.Wait4(pid, &ws, 0, nil); err == nil && ws.ExitStatus() != 0 {
		t.Errorf("roles exited with %v", ws)
	}
	_ = cmd.Process.Release()
	b, err := os.ReadFile(report)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report:\n%s", b)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	for _, l := range lines {
		if why, ok := strings.CutPrefix(l, "skip "); ok && !slices.Contains(lines, "ok out") {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s (CI runs as root on a host with cgroups)", why)
			}
			t.Skip(why)
		}
		if strings.HasPrefix(l, "fail ") {
			t.Error(l)
		}
	}
	for _, want := range []string{"ok out", "ok one tree", "ok locks close-on-exec", "ok worker in its cgroup", "ok limit",
		"ok sweep leaves it alone", "ok oom", "ok spawn", "ok kill", "ok closed", "done"} {
		if !slices.Contains(lines, want) {
			t.Errorf("no %q in the report", want)
		}
	}
	host, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if left := host.Trees("ringmaster", pid); len(left) > 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// testArbiter is an arbiter with one watcher, web (cgroup = worker, a pids
// limit), and its cgroup tree, closed when the test ends.
func testArbiter(t *testing.T) (*Arbiter, *Watcher) {
	t.Helper()
	r := &roleReport{log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	a, w := r.roleArbiter()
	a.startCgroups()
	needCgroups(t, a)
	t.Cleanup(a.closeCgroups)
	a.attachCgroup(w)
	return a, w
}

// The exec failed: the tree's lock fds are close-on-exec again, so that
// no worker spawned from then on holds the tree's locks.
func TestCgroupsBack(t *testing.T) {
	t.Parallel()
	a, _ := testArbiter(t)
	st, err := a.cgroupsOut()
	if err != nil {
		t.Fatal(err)
	}
	cloexec := func(fd int) bool {
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatalf("lock fd %d: %v", fd, err)
		}
		return flags&unix.FD_CLOEXEC != 0
	}
	fds := a.cg.tree.LockFDs()
	if len(st.Tree.Dirs) != len(fds) {
		t.Fatalf("the state names %d lock fds, the tree holds %v", len(st.Tree.Dirs), fds)
	}
	for _, d := range st.Tree.Dirs {
		if !slices.Contains(fds, d.LockFD) || cloexec(d.LockFD) {
			t.Errorf("lock fd %d of %s: not the tree's %v, or close-on-exec after cgroupsOut", d.LockFD, d.Dir, fds)
		}
	}
	err = syscall.Exec("/nonexistent/arbiter", []string{"arbiter"}, nil)
	if !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("exec of a missing binary: %v", err)
	}
	a.cgroupsBack()
	for _, fd := range fds {
		if !cloexec(fd) {
			t.Errorf("lock fd %d is not close-on-exec after cgroupsBack", fd)
		}
	}
}

// What a watcher's cgroups are goes across the exec whole: its cgroup and
// its workers', the dead ones' to sweep, the OOM kills already reported
// and the kills of a stop under way; a worker not adopted has its cgroup
// swept, and a cgroup gone missing is said and made anew.
func TestWatcherCgroupOutIn(t *testing.T) {
	t.Parallel()
	a, w := testArbiter(t)
	c := w.cg
	cfg := *w.cfg
	js, done := c.prepare(&cfg, 1)
	cgroups.CloseJoins(js)
	done(1001, true)
	js, done = c.prepare(&cfg, 2)
	cgroups.CloseJoins(js)
	done(1002, true)
	dead := c.group.Sub("wid3-9")
	if _, err := dead.Setup(cgroups.Limits{}); err != nil {
		t.Fatal(err)
	}
	c.dead = []*cgroups.Group{dead}
	c.ooms, c.workerOOMs, c.killed = 3, map[int]uint64{1001: 2}, true
	c.groupKilled, c.reported = map[int]bool{77: true}, map[int]bool{78: true, 79: true}
	st, err := a.cgroupsOut()
	if err != nil {
		t.Fatal(err)
	}
	defer a.cgroupsBack()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back cgroupState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	ws := back.Watchers["web"]
	want := watcherCgroupState{Dir: "web", Group: true, Applied: cfg.Cgroup, Workers: map[int]string{1001: "web/wid1-1", 1002: "web/wid2-2"},
		Dead: []string{"web/wid3-9"}, Seq: 2, OOMs: 3, WorkerOOMs: map[int]uint64{1001: 2}, GroupKilled: []int{77}, Reported: []int{78, 79}, Killed: true}
	if d := cmp.Diff(want, ws); d != "" {
		t.Fatalf("the state after JSON (-want +got):\n%s", d)
	}

	// The new image's arbiter, on the same tree; worker 1002 was not
	// adopted.
	var log syncBuf
	a2 := &Arbiter{log: slog.New(slog.NewTextHandler(&log, nil))}
	func() {
		defer func() {
			if p := recover(); p == nil || !strings.Contains(p.(string), "BUG: arbiter: attachCgroupFrom before startCgroupsFrom") {
				t.Errorf("attachCgroupFrom before startCgroupsFrom: panic %v, want a BUG naming the order", p)
			}
		}()
		a2.attachCgroupFrom(newWatcher(config.DefaultWatcher("web"), nil, a2.log, nil, nil), ws, nil)
	}()
	// Adopted alongside a, which keeps the tree: never closed here.
	if err := a2.startCgroupsFrom(&back); err != nil {
		t.Fatal(err)
	}
	w2 := newWatcher(config.DefaultWatcher("web"), nil, a2.log, nil, nil)
	a2.attachCgroupFrom(w2, ws, []int{1001})
	adopted := want
	adopted.Workers = map[int]string{1001: "web/wid1-1"}
	adopted.Dead = []string{"web/wid2-2", "web/wid3-9"} // 1002's first: not adopted
	if d := cmp.Diff(adopted, w2.cg.out()); d != "" {
		t.Errorf("adopted (-want +got):\n%s", d)
	}
	if w2.cg.group == nil || w2.cg.applied != cfg.Cgroup {
		t.Errorf("the watcher's cgroup not adopted: %v, %+v", w2.cg.group, w2.cg.applied)
	}

	// A cgroup gone: said, and made anew at the next spawn.
	gone := ws
	gone.Dir, gone.Workers, gone.Dead = "gone", nil, nil
	w3 := newWatcher(config.DefaultWatcher("gone"), nil, a2.log, nil, nil)
	a2.attachCgroupFrom(w3, gone, nil)
	if w3.cg.group != nil || !strings.Contains(log.String(), "cgroup gone of ") {
		t.Errorf("a missing cgroup adopted (%v), or not said:\n%s", w3.cg.group, log.String())
	}
	js, done = w3.cg.prepare(&cfg, 1)
	cgroups.CloseJoins(js)
	done(0, false)
	if w3.cg.group == nil {
		t.Error("the missing cgroup was not made anew at the next spawn")
	}
	_ = w3.cg.group.Remove()
}

// The new image adopts the tree that the state describes, or says why it
// cannot (here: a directory made anew during the hand-over) and runs
// without cgroups, with nothing of the state closed, for the way back; a
// state without a tree gives none, and says why as before.
func TestStartCgroupsFrom(t *testing.T) {
	t.Parallel()
	a, _ := testArbiter(t)
	st, err := a.cgroupsOut()
	if err != nil {
		t.Fatal(err)
	}
	defer a.cgroupsBack()
	quiet := slog.New(slog.NewTextHandler(t.Output(), nil))

	// Adopted alongside a, which keeps the tree: never closed here.
	same := &Arbiter{log: quiet}
	if err := same.startCgroupsFrom(st); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(same.cg.tree.Dirs(), a.cg.tree.Dirs()) || same.cg.seq != a.cg.seq || int(cgroupTrees.Load()) < a.cg.seq {
		t.Errorf("adopted %v (seq %d, next %d), want %v (seq %d)", same.cg.tree.Dirs(), same.cg.seq, cgroupTrees.Load(), a.cg.tree.Dirs(), a.cg.seq)
	}

	bad := *st
	ts := *st.Tree
	ts.Dirs = slices.Clone(ts.Dirs)
	ts.Dirs[0].Ino++
	bad.Tree = &ts
	refused := &Arbiter{log: quiet}
	err = refused.startCgroupsFrom(&bad)
	if err == nil || !strings.Contains(err.Error(), ts.Dirs[0].Dir+": made anew") {
		t.Fatalf("startCgroupsFrom of a tree made anew: %v, want an error naming its directory", err)
	}
	if refused.cg.tree != nil || refused.cg.info.Reason != err.Error() || refused.cg.info.Host != st.Info.Host {
		t.Errorf("after a refusal: tree %v, info %+v; want none, and the reason", refused.cg.tree, refused.cg.info)
	}
	for _, d := range st.Tree.Dirs {
		if _, err := unix.FcntlInt(uintptr(d.LockFD), unix.F_GETFD, 0); err != nil {
			t.Errorf("lock fd %d of %s after a refusal: %v", d.LockFD, d.Dir, err)
		}
	}

	none := &Arbiter{log: quiet}
	if err := none.startCgroupsFrom(&cgroupState{Info: CgroupInfo{Host: "hybrid", Reason: "no writable cgroup hierarchy"}}); err != nil {
		t.Fatal(err)
	}
	if none.cg.tree != nil || none.cg.info.Reason != "no writable cgroup hierarchy" {
		t.Errorf("without a tree: %v, %+v", none.cg.tree, none.cg.info)
	}
}
