package arbiter

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// guardTree makes a tree on this host's hierarchies that keep accepts,
// removed when the test ends, or skips the test where none can be made.
func guardTree(t testing.TB, keep func(*cgroups.Hierarchy) bool) *cgroups.Tree {
	t.Helper()
	host, err := hostCgroups()
	if err != nil {
		t.Skip(err)
	}
	sub := &cgroups.Host{}
	for _, x := range host.Hierarchies {
		if keep(x) {
			sub.Hierarchies = append(sub.Hierarchies, x)
		}
	}
	tree, err := cgroups.NewTree(sub, "ringmaster", int(cgroupTrees.Add(1)))
	if err != nil {
		t.Skipf("no tree on %s: %v", sub, err)
	}
	t.Cleanup(func() {
		if err := tree.Close(time.Now().Add(5 * time.Second)); err != nil {
			t.Errorf("Tree.Close: %v", err)
		}
	})
	return tree
}

// sleeper starts /bin/sleep in group g of tree (in a session of its own
// with setsid, as a daemon), and returns it; the test reaps it.
func sleeper(t *testing.T, tree *cgroups.Tree, g string, setsid bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	dir := tree.Group(g).Dir(tree.Tracker())
	if err := os.WriteFile(path.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// reap waits for pid, a child of the test, and returns its status.
func reap(t testing.TB, pid int) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("wait4 %d: %v", pid, err)
		}
		return ws
	}
}

// A guardian whose arbiter is gone (the write end closed without the
// stand-down byte) kills everything in the tree, below it too, whatever
// session it moved to, by each way it knows on the hierarchies this host
// has, and then removes the tree. Not parallel: its children are reaped here, where no arbiter's
// reaper can take them.
func TestGuardianKillsTree(t *testing.T) {
	v2 := func(x *cgroups.Hierarchy) bool { return x.Version == 2 }
	tests := []struct {
		name   string
		keep   func(*cgroups.Hierarchy) bool
		method guardMethod
	}{
		{"v2 cgroup.kill", v2, 0},
		{"v2 cgroup.freeze", v2, guardV2Freeze},
		{"v2 kill loop", v2, guardLoop},
		{"v1 freezer", func(x *cgroups.Hierarchy) bool { return x.Version == 1 && x.Has(cgroups.Freezer) }, 0},
		{"v1 pids kill loop", func(x *cgroups.Hierarchy) bool { return x.Version == 1 && x.Has(cgroups.Pids) }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := guardTree(t, tt.keep)
			for _, g := range []string{"w", "w/wid1-1"} {
				if _, err := tree.Group(g).Setup(cgroups.Limits{}); err != nil {
					t.Fatal(err)
				}
			}
			procs := []*exec.Cmd{sleeper(t, tree, "w", false), sleeper(t, tree, "w/wid1-1", false), sleeper(t, tree, "w", true)}
			g, err := forkGuardianDir(tree.Tracker(), tree.Group("").Dir(tree.Tracker()), tree.Dirs(), tree.LockFDs(), tt.method, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("guardian %d over %s kills by %s", g.pid, tree.Dirs(), g.kill)
			checkGuardian(t, tree, g.pid)

			g.abandon()
			if ws := reap(t, g.pid); ws.ExitStatus() != 1 {
				t.Errorf("guardian exit status %v, want 1 (it killed)", ws)
			}
			for _, p := range procs {
				done := make(chan error, 1)
				go func() { done <- p.Wait() }()
				select {
				case <-done:
					if ws := p.ProcessState.Sys().(syscall.WaitStatus); ws.Signal() != syscall.SIGKILL {
						t.Errorf("process %d ended with %v, want SIGKILL", p.Process.Pid, ws)
					}
				case <-time.After(10 * time.Second):
					t.Fatalf("process %d in the tree still running 10s after its guardian was abandoned", p.Process.Pid)
				}
			}
			// Reaped before it exits, so removed already.
			for _, d := range tree.Dirs() {
				if _, err := os.Stat(d); !os.IsNotExist(err) {
					t.Errorf("the guardian left %s (%v)", d, err)
				}
			}
		})
	}
}

// checkGuardian checks what the guardian holds while it waits: a session
// of its own, no signal it does not ignore, no fds but its pipe and those
// of its tree, no cwd to keep busy, and its own name; and that it is not in the tree it would kill.
func checkGuardian(t *testing.T, tree *cgroups.Tree, pid int) {
	t.Helper()
	var st procfs.Stat
	testproc.WaitFor(t, "the guardian to set itself up", 5*time.Second, func() bool {
		var r procfs.Reader
		st, _ = r.Stat(pid)
		sid, _ := unix.Getsid(pid)
		return sid == pid && st.Comm == "arbiter-guard"
	})
	fds, err := os.ReadDir(procfs.Path(pid, "fd"))
	if err != nil {
		t.Fatal(err)
	}
	var open []string
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join(procfs.Path(pid, "fd"), fd.Name()))
		open = append(open, fd.Name()+" -> "+target)
	}
	pipes := 0
	for _, fd := range open {
		switch {
		case strings.Contains(fd, "-> pipe:"):
			pipes++
		case !slices.ContainsFunc(tree.Dirs(), func(d string) bool { return strings.Contains(fd, "-> "+path.Dir(d)) }):
			t.Errorf("guardian fd %s is neither its pipe nor of its tree", fd)
		}
	}
	if pipes != 1 || len(open) > 3+2*len(tree.Dirs()) {
		t.Errorf("guardian fds: %v; want the pipe's read end, the tree's cgroup.kill and directory, and each tree directory's parent and lock, no more", open)
	}
	// The locks: an fd on each tree directory (on the tracker's, besides
	// the one it kills through), which keeps other arbiters' sweeps off
	// the tree until the guardian is done with it.
	for _, d := range tree.Dirs() {
		want := 1
		if d == tree.Group("").Dir(tree.Tracker()) {
			want = 2
		}
		if n := len(slices.DeleteFunc(slices.Clone(open), func(fd string) bool { return !strings.HasSuffix(fd, " -> "+d) })); n != want {
			t.Errorf("guardian fds: %v; want %d on %s (its lock)", open, want, d)
		}
	}
	if cg, _ := os.ReadFile(procfs.Path(pid, "cgroup")); strings.Contains(string(cg), "/"+tree.Name()+"/") ||
		strings.Contains(string(cg), "/"+tree.Name()+"\n") {
		t.Errorf("the guardian is inside the tree it guards:\n%s", cg)
	}
	if cwd, _ := os.Readlink(procfs.Path(pid, "cwd")); cwd != "/" {
		t.Errorf("guardian cwd %q, want /", cwd)
	}
	status, _ := os.ReadFile(procfs.Path(pid, "status"))
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "SigIgn:"); ok {
			// Every standard signal but SIGKILL (9) and SIGSTOP (19);
			// of the real-time ones, the C library keeps some for itself.
			const std = 1<<31 - 1
			if n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64); n&std != std&^(1<<8|1<<18) {
				t.Errorf("guardian ignores signals %s, want all it can", strings.TrimSpace(v))
			}
		}
	}
}

// A guardian told to stand down exits 0 and kills nothing; and the tree
// can be removed under one (as the arbiter's shutdown does before it
// stands the guardian down): its open files do not keep it.
func TestGuardianStandsDown(t *testing.T) {
	for name, keep := range map[string]func(*cgroups.Hierarchy) bool{
		"v2":         func(x *cgroups.Hierarchy) bool { return x.Version == 2 },
		"v1 freezer": func(x *cgroups.Hierarchy) bool { return x.Version == 1 && x.Has(cgroups.Freezer) },
	} {
		t.Run(name, func(t *testing.T) {
			tree := guardTree(t, keep)
			w := tree.Group("w")
			if _, err := w.Setup(cgroups.Limits{}); err != nil {
				t.Fatal(err)
			}
			p := sleeper(t, tree, "w", false)
			start := func() *guardianProc {
				g, err := forkGuardian(tree, nil)
				if err != nil {
					t.Fatal(err)
				}
				checkGuardian(t, tree, g.pid)
				return g
			}
			standDown := func(g *guardianProc) {
				if err := g.standDown(); err != nil {
					t.Fatal(err)
				}
				if ws := reap(t, g.pid); ws.ExitStatus() != 0 || ws.Signaled() {
					t.Errorf("guardian exit status %v, want 0", ws)
				}
			}

			standDown(start())
			if testproc.DeadOrZombie(p.Process.Pid) {
				t.Errorf("a guardian that stood down killed process %d", p.Process.Pid)
			}

			g := start()
			if err := w.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = p.Wait()
			if err := tree.Close(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatalf("Tree.Close with a guardian holding its files: %v", err)
			}
			for _, d := range tree.Dirs() {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("%s still exists after Close", d)
				}
			}
			standDown(g)
		})
	}
}

// BenchmarkGuardianStart measures what a guardian costs the arbiter's
// start-up: the fork, on an arbiter with little memory and with 256 MiB of
// heap written (fork time grows with the memory a fork copies; the
// guardian's does not), and the memory the guardian holds once it waits
// (kB of resident memory, all of it, and of it its own anonymous memory).
func BenchmarkGuardianStart(b *testing.B) {
	tree := guardTree(b, func(x *cgroups.Hierarchy) bool { return x.Version == 2 })
	for _, mib := range []int{0, 256} {
		b.Run("heap="+strconv.Itoa(mib)+"MiB", func(b *testing.B) {
			ballast := make([]byte, mib<<20)
			for i := 0; i < len(ballast); i += 4096 {
				ballast[i] = 1
			}
			var rss, anon float64
			n := 0
			for b.Loop() {
				g, err := forkGuardian(tree, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				testproc.WaitFor(b, "the guardian to set itself up", 5*time.Second, func() bool {
					var r procfs.Reader
					st, _ := r.Stat(g.pid)
					return st.Comm == "arbiter-guard"
				})
				status, _ := os.ReadFile(procfs.Path(g.pid, "status"))
				for _, line := range strings.Split(string(status), "\n") {
					f := strings.Fields(line)
					if len(f) == 3 && (f[0] == "VmRSS:" || f[0] == "RssAnon:") {
						v, _ := strconv.ParseFloat(f[1], 64)
						if f[0] == "VmRSS:" {
							rss += v
						} else {
							anon += v
						}
					}
				}
				n++
				if err := g.standDown(); err != nil {
					b.Fatal(err)
				}
				reap(b, g.pid)
				b.StartTimer()
			}
			b.ReportMetric(rss/float64(n), "rss-kB")
			b.ReportMetric(anon/float64(n), "anon-kB")
			runtime.KeepAlive(ballast)
		})
	}
}

// A guardian holds the tree's locks in a fixed array: more than it has
// room for is refused before anything is forked.
func TestGuardianTooManyLocks(t *testing.T) {
	tree := guardTree(t, func(x *cgroups.Hierarchy) bool { return x.Version == 2 })
	locks := make([]int, 9)
	for i := range locks {
		locks[i] = tree.LockFDs()[0]
	}
	g, err := forkGuardianDir(tree.Tracker(), tree.Group("").Dir(tree.Tracker()), tree.Dirs(), locks, 0, nil)
	if err == nil {
		g.abandon()
		reap(t, g.pid)
		t.Fatal("forkGuardianDir with 9 locks started a guardian, want an error")
	}
	if want := "guardian: 9 cgroup locks to hold, room for 8"; err.Error() != want {
		t.Errorf("forkGuardianDir with 9 locks = %q, want %q", err, want)
	}
}
