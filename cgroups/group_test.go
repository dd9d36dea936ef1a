package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// The test binary plays helper processes, chosen by $CGROUPS_HELPER. Each
// first joins the cgroups whose cgroup.procs files $CGROUPS_JOIN lists, as
// the arbiter's spawner does between fork and exec, so that nothing it
// starts is outside them.
func TestMain(m *testing.M) {
	if role := os.Getenv("CGROUPS_HELPER"); role != "" {
		os.Exit(helper(role))
	}
	code := m.Run()
	if h, err := Detect(); err == nil {
		if left := h.Trees(testPrefix, os.Getpid()); len(left) > 0 {
			fmt.Fprintln(os.Stderr, "cgroups left behind:", left)
			code = 1
		}
	}
	os.Exit(code)
}

const testPrefix = "rmtest"

func helper(role string) int {
	for _, p := range strings.Split(os.Getenv("CGROUPS_JOIN"), ":") {
		if p == "" {
			continue
		}
		if err := os.WriteFile(p, []byte("0"), 0); err != nil {
			fmt.Fprintln(os.Stderr, "helper: join:", err)
			return 3
		}
	}
	n, _ := strconv.Atoi(os.Getenv("CGROUPS_N"))
	switch role {
	case "leaf":
		leafHelper()
		return 0
	case "tree":
		// n children, every other one in a session of its own (as a
		// daemon makes), then wait to be killed.
		for i := range n {
			c := exec.Command("sleep", "300")
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: i%2 == 1}
			if err := c.Start(); err != nil {
				fmt.Println("error", err)
				return 3
			}
		}
		fmt.Println("ready")
	case "forks":
		// Start up to n children; report how many before an error.
		started := 0
		var err error
		for ; started < n; started++ {
			c := exec.Command("sleep", "300")
			if err = c.Start(); err != nil {
				break
			}
		}
		fmt.Println("started", started, err)
	case "owner":
		ownerHelper()
	case "sweep":
		sweepHelper()
		return 0
	case "leafout":
		leafOutHelper()
		return 0
	case "leafin":
		leafInHelper()
		return 0
	case "hog":
		b := make([]byte, n)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		fmt.Println("survived", len(b))
		return 0
	}
	for {
		time.Sleep(time.Hour)
	}
}

var seq atomic.Int32

// testTree makes a tree on the host with the hierarchies keep accepts, or
// skips the test when it cannot (unless CI is set: CI's host has cgroups
// and the test must take a real path there).
func testTree(t *testing.T, keep func(*Hierarchy) bool) *Tree {
	t.Helper()
	h, err := Detect()
	if err != nil {
		t.Fatalf("Detect: %v", err)
	}
	sub := &Host{}
	for _, x := range h.Hierarchies {
		if keep == nil || keep(x) {
			sub.Hierarchies = append(sub.Hierarchies, x)
		}
	}
	tr, err := NewTree(sub, testPrefix, int(seq.Add(1))+1)
	if err != nil {
		if os.Getenv("CI") == "true" && os.Getuid() == 0 {
			t.Fatalf("NewTree on %s: %v (CI runs as root on a host with cgroups)", sub, err)
		}
		t.Skipf("no usable cgroups on %s: %v", sub, err)
	}
	t.Cleanup(func() {
		if err := tr.Close(time.Now().Add(5 * time.Second)); err != nil {
			t.Errorf("Tree.Close: %v", err)
		}
		for _, d := range tr.Dirs() {
			if _, err := os.Stat(d); err == nil {
				t.Errorf("%s still exists after Close", d)
			}
		}
	})
	t.Logf("host %s; tree %v, kill: %s, notes: %v", sub, tr.Dirs(), tr.KillMethod(), tr.Notes())
	return tr
}

// start runs a helper in g and returns it with its first line of output.
func start(t *testing.T, g *Group, role string, n int) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	js, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, j := range js {
		paths = append(paths, j.Path)
	}
	CloseJoins(js)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CGROUPS_HELPER="+role, "CGROUPS_JOIN="+strings.Join(paths, ":"), "CGROUPS_N="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, bufio.NewReader(out)
}

func line(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	s, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return strings.TrimSpace(s)
}

// Each way of killing a cgroup empties it of a process tree that includes
// children in sessions of their own, which a process-group kill misses.
func TestKill(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		keep func(*Hierarchy) bool
		want string
	}{
		{"v2", func(x *Hierarchy) bool { return x.Version == 2 }, "v2"},
		{"v1 freezer", func(x *Hierarchy) bool { return x.Version == 1 && (x.Has(Freezer) || x.Has(Pids)) }, "v1 freezer"},
		{"v1 without freezer", func(x *Hierarchy) bool { return x.Version == 1 && x.Has(Pids) }, "v1 pids"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tr := testTree(t, tt.keep)
			if !strings.HasPrefix(tr.KillMethod(), tt.want) {
				t.Skipf("this host kills by %q here, not %s", tr.KillMethod(), tt.want)
			}
			g := tr.Group("w")
			if _, err := g.Setup(Limits{}); err != nil {
				t.Fatal(err)
			}
			cmd, out := start(t, g, "tree", 6)
			if s := line(t, out); s != "ready" {
				t.Fatalf("helper: %q", s)
			}
			ps, err := g.Procs()
			if err != nil || len(ps) != 7 {
				t.Fatalf("Procs() = %v, %v; want the helper and its 6 children", ps, err)
			}
			began := time.Now()
			if err := g.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if err := g.Wait(time.Now().Add(5 * time.Second)); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			t.Logf("%s: 7 processes killed and gone in %v", tr.KillMethod(), time.Since(began).Round(time.Microsecond))
			if busy, err := g.Populated(); busy || err != nil {
				t.Errorf("Populated() = %v, %v after Wait", busy, err)
			}
			if err := cmd.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
				t.Errorf("helper exit = %v, want killed", err)
			}
			for _, pid := range ps {
				if !testproc.DeadOrZombie(pid) {
					t.Errorf("pid %d still runs", pid)
				}
			}
			if err := g.Remove(); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			for _, d := range tr.Dirs() {
				if _, err := os.Stat(path.Join(d, "w")); err == nil {
					t.Errorf("%s/w still exists after Remove", d)
				}
			}
		})
	}
}

// Limits go to the hierarchy carrying their controller and are lifted when
// no longer asked for.
func TestLimits(t *testing.T) {
	t.Parallel()
	tr := testTree(t, nil)
	g := tr.Group("lim").Sub("w1")
	l := Limits{MemoryMax: 64 << 20, PidsMax: 20, CPUQuota: 50}
	unenforced, err := g.Setup(l)
	if err != nil {
		t.Fatal(err)
	}
	read := func(x *Hierarchy, file string) string {
		b, err := os.ReadFile(path.Join(g.Dir(x), file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	type check struct{ c, v2file, v2want, v1file, v1want string }
	checks := []check{
		{Memory, "memory.max", "67108864", "memory.limit_in_bytes", "67108864"},
		{Pids, "pids.max", "20", "pids.max", "20"},
		{CPU, "cpu.max", "50000 100000", "cpu.cfs_quota_us", "50000"},
	}
	for _, c := range checks {
		x := tr.Carrier(c.c)
		if x == nil {
			t.Logf("%s: no carrier on this host (unenforced: %v)", c.c, unenforced)
			continue
		}
		file, want := c.v1file, c.v1want
		if x.Version == 2 {
			file, want = c.v2file, c.v2want
		}
		if got := read(x, file); got != want {
			t.Errorf("%s in %s = %q, want %q", file, x, got, want)
		}
		t.Logf("%s limit on %s: %s = %s", c.c, x, file, want)
	}
	if _, err := g.Setup(Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		x := tr.Carrier(c.c)
		if x == nil {
			continue
		}
		file := c.v1file
		if x.Version == 2 {
			file = c.v2file
		}
		if got := read(x, file); got == c.v1want || got == c.v2want {
			t.Errorf("%s in %s = %q after the limit was lifted", file, x, got)
		}
	}
}

// pids.max stops a process that forks without end, and memory.max's OOM
// kills are counted.
func TestEnforced(t *testing.T) {
	t.Parallel()
	tr := testTree(t, nil)
	t.Run("pids", func(t *testing.T) {
		t.Parallel()
		if tr.Carrier(Pids) == nil {
			t.Skip("no pids controller")
		}
		g := tr.Group("pids")
		if _, err := g.Setup(Limits{PidsMax: 16}); err != nil {
			t.Fatal(err)
		}
		_, out := start(t, g, "forks", 100)
		s := line(t, out)
		var n int
		if _, err := fmt.Sscanf(s, "started %d", &n); err != nil || n >= 16 || !strings.Contains(s, "resource temporarily unavailable") {
			t.Fatalf("helper: %q; want fewer than 16 started, then EAGAIN", s)
		}
		t.Logf("pids.max 16 on %s: %s", tr.Carrier(Pids), s)
		g.Kill()
		if err := g.Wait(time.Now().Add(5 * time.Second)); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("oom", func(t *testing.T) {
		t.Parallel()
		if tr.Carrier(Memory) == nil {
			t.Skip("no memory controller")
		}
		g := tr.Group("oom")
		if _, err := g.Setup(Limits{MemoryMax: 32 << 20}); err != nil {
			t.Fatal(err)
		}
		if n, ok := g.OOMKills(); !ok || n != 0 {
			t.Fatalf("OOMKills() = %d, %v before anything ran", n, ok)
		}
		cmd, out := start(t, g, "hog", 256<<20)
		if s := line(t, out); s != "" {
			t.Fatalf("the hog survived 256 MiB under a 32 MiB limit: %q", s)
		}
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("hog exit = %v, want SIGKILL from the OOM killer", err)
		}
		if n, ok := g.OOMKills(); !ok || n != 1 {
			t.Errorf("OOMKills() = %d, %v; want 1", n, ok)
		}
		t.Logf("memory limit on %s: the hog was OOM-killed and counted", tr.Carrier(Memory))
	})
}

// A tree left by a dead process is removed by the next one.
func TestSweep(t *testing.T) {
	t.Parallel()
	tr := testTree(t, nil)
	x := tr.Tracker()
	// A prefix of its own: the trees the package's other tests make at
	// the same time would sweep testPrefix's stale trees first.
	const prefix = testPrefix + "sweep"
	stale := path.Join(x.Dir, prefix+"-99999999")
	if err := os.MkdirAll(path.Join(stale, "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := &Host{Hierarchies: []*Hierarchy{x}}
	tr2, err := NewTree(h, prefix, int(seq.Add(1))+1)
	if err != nil {
		t.Fatal(err)
	}
	defer tr2.Close(time.Now().Add(time.Second))
	if _, err := os.Stat(stale); err == nil {
		t.Errorf("stale tree %s not swept", stale)
		removeAll(stale)
	}
	if got := tr2.Swept(); len(got) != 1 || got[0] != stale {
		t.Errorf("Swept() = %v, want [%s]", got, stale)
	}
}

// A process joins the tracker, where Kill, Wait and Procs look for it, and
// a carrier only for a limit it has: where the tracker is v2, through its
// directory, for clone3's CLONE_INTO_CGROUP (no migration); where there is
// no v2 (a legacy host), through the tracker's cgroup.procs, since v1
// offers nothing else. The kill method names the tracker.
func TestOpenJoins(t *testing.T) {
	t.Parallel()
	for _, host := range []struct {
		name string
		keep func(*Hierarchy) bool
	}{
		{"all", nil},
		{"v1 only", func(x *Hierarchy) bool { return x.Version == 1 }},
	} {
		t.Run(host.name, func(t *testing.T) {
			t.Parallel()
			tr := testTree(t, host.keep)
			x := tr.Tracker()
			if want := fmt.Sprintf("v%d", x.Version); !strings.HasPrefix(tr.KillMethod(), want) {
				t.Errorf("KillMethod() = %q with the tracker %s", tr.KillMethod(), x)
			}
			for _, tt := range []struct {
				name string
				lim  Limits
			}{
				{"none", Limits{}},
				{"memory", Limits{MemoryMax: 64 << 20}},
				{"pids", Limits{PidsMax: 50}},
				{"all", Limits{MemoryMax: 64 << 20, PidsMax: 50, CPUQuota: 50}},
			} {
				g := tr.Group("open-" + tt.name)
				if _, err := g.Setup(tt.lim); err != nil {
					t.Fatal(err)
				}
				js, err := g.Open()
				if err != nil {
					t.Fatal(err)
				}
				CloseJoins(js)
				want := []Join{{Path: path.Join(g.Dir(x), "cgroup.procs"), Clone: x.Version == 2}}
				for _, c := range tt.lim.Controllers() {
					if cx := tr.Carrier(c); cx != nil && cx != x && !slices.ContainsFunc(want, func(j Join) bool { return strings.HasPrefix(j.Path, g.Dir(cx)+"/") }) {
						want = append(want, Join{Path: path.Join(g.Dir(cx), "cgroup.procs"), Clone: cx.Version == 2})
					}
				}
				for i := range js {
					js[i].FD = 0
				}
				if !slices.Equal(js, want) {
					t.Errorf("%s: Open() = %v, want %v", tt.name, js, want)
				}
			}
		})
	}
}
