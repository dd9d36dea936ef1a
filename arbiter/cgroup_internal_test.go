package arbiter

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
)

// syncBuf is a log sink safe for the test and the code under it.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// On a host without usable cgroups, a worker starts without one, and each
// configured limit is said, once and by its key, not to be enforced.
func TestCgroupFallbackWarnsOnce(t *testing.T) {
	t.Parallel()
	var buf syncBuf
	c := &watcherCgroup{
		root:    &cgroupRoot{info: CgroupInfo{Reason: "no writable cgroup hierarchy (v2 /sys/fs/cgroup: mounted read-only)"}},
		log:     slog.New(slog.NewTextHandler(&buf, nil)),
		workers: map[int]*cgroups.Group{},
	}
	w := config.DefaultWatcher("w")
	w.Cgroup = config.Cgroup{MemoryMax: 64 << 20, PidsMax: 10}
	for pid := range 3 {
		js, done := c.prepare(w, 1)
		if js != nil {
			t.Fatalf("prepare gave cgroups to join on a host without any: %v", js)
		}
		done(100+pid, true)
	}
	log := buf.String()
	for _, key := range []string{"cgroup.memory_max", "cgroup.pids_max"} {
		if n := strings.Count(log, "key="+key); n != 1 {
			t.Errorf("%d warnings naming %s, want 1:\n%s", n, key, log)
		}
	}
	if !strings.Contains(log, "mounted read-only") {
		t.Errorf("the warning does not say why:\n%s", log)
	}
	// A change of the settings warns again.
	w2 := *w
	w2.Cgroup.PidsMax = 20
	c.prepare(&w2, 1)
	if n := strings.Count(buf.String(), "key=cgroup.pids_max"); n != 2 {
		t.Errorf("%d warnings naming cgroup.pids_max after a change, want 2", n)
	}
}

// Where the only writable hierarchy carries no controller (v2 on this
// machine, taken alone), workers still get a cgroup to be tracked and
// killed in, and the limit is said not to be enforced.
func TestCgroupTrackingOnly(t *testing.T) {
	t.Parallel()
	host, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	v2 := host.Unified()
	if v2 == nil || v2.Has(cgroups.Memory) || os.Getuid() != 0 {
		t.Skip("needs root and a v2 hierarchy without the memory controller")
	}
	tree, err := cgroups.NewTree(&cgroups.Host{Hierarchies: []*cgroups.Hierarchy{v2}}, "ringmaster", int(cgroupTrees.Add(1)))
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() {
		if err := tree.Close(time.Now().Add(time.Second)); err != nil {
			t.Error(err)
		}
	})
	var buf syncBuf
	c := &watcherCgroup{root: &cgroupRoot{tree: tree}, log: slog.New(slog.NewTextHandler(&buf, nil)), name: "w", workers: map[int]*cgroups.Group{}}
	w := config.DefaultWatcher("w")
	w.Cgroup.MemoryMax = 64 << 20
	js, done := c.prepare(w, 1)
	if len(js) != 1 || !strings.HasPrefix(js[0].Path, v2.Dir) {
		t.Fatalf("prepare joins %v, want the v2 cgroup alone", js)
	}
	done(0, false)
	if log := buf.String(); !strings.Contains(log, `msg="limit not enforced" key=cgroup.memory_max reason="no writable cgroup controller for it on this host"`) {
		t.Errorf("log:\n%s", log)
	}
}

// A worker that cannot join its cgroup is not started, and the error names
// the stage and the cgroup. Not parallel: the child is reaped here, where
// no arbiter's reaper can take it.
func TestSpawnCgroupStage(t *testing.T) {
	fd, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	pid, _, err := forkExec(&spawnAttr{path: "/bin/true", argv: []string{"true"}, umask: -1,
		cgroups: []cgroups.Join{{FD: fd, Path: "/sys/fs/cgroup/x/cgroup.procs"}}}, nil)
	if pid > 0 {
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
	}
	want := `join cgroup "/sys/fs/cgroup/x/cgroup.procs": bad file descriptor`
	if err == nil || err.Error() != want {
		t.Fatalf("forkExec error = %v, want %q", err, want)
	}
}

// procCgroups maps each hierarchy of /proc/PID/cgroup text to the
// process's cgroup in it: "0" (v2), "memory", "pids"...
func procCgroups(text string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" {
			m["0"] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			m[c] = parts[2]
		}
	}
	return m
}

// spawnCat runs /bin/cat /proc/self/cgroup through forkExec with attr's
// cgroups and returns what it printed: where the worker is once it runs.
// The child is reaped here.
func spawnCat(t *testing.T, a *spawnAttr) (string, error) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	a.path, a.argv, a.umask, a.files = "/bin/cat", []string{"cat", "/proc/self/cgroup"}, -1, []*os.File{nil, w, w}
	pid, pidfd, err := forkExec(a, nil)
	w.Close()
	if pid > 0 {
		var ws unix.WaitStatus
		if _, werr := unix.Wait4(pid, &ws, 0, nil); werr != nil {
			t.Fatal(werr)
		}
		if err == nil && ws.ExitStatus() != 0 {
			t.Fatalf("cat: %v", ws)
		}
	}
	if pidfd >= 0 {
		unix.Close(pidfd)
	}
	out, rerr := io.ReadAll(r)
	if rerr != nil {
		t.Fatal(rerr)
	}
	return string(out), err
}

// A worker is created in its v2 cgroup by clone3 (CLONE_INTO_CGROUP: no
// migration, in it from its first instruction), and joins a v1 hierarchy
// only where a limit it has lives; the fallback (clone() and writes to
// cgroup.procs, forced here with noClone3, as on a kernel without clone3)
// ends in the same places. Not parallel: the children are reaped here.
func TestSpawnIntoCgroup(t *testing.T) {
	host, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	if os.Getuid() != 0 || host.Unified() == nil {
		t.Skip("needs root and a v2 hierarchy")
	}
	tree, err := cgroups.NewTree(host, "ringmaster", int(cgroupTrees.Add(1)))
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() {
		if err := tree.Close(time.Now().Add(5 * time.Second)); err != nil {
			t.Error(err)
		}
	})
	if x := tree.Tracker(); x.Version != 2 {
		t.Skipf("the tracker is %s, not v2", x)
	}
	memV1 := tree.Carrier(cgroups.Memory) != nil && tree.Carrier(cgroups.Memory).Version == 1
	for _, tt := range []struct {
		name     string
		lim      cgroups.Limits
		noClone3 bool
	}{
		{"clone3", cgroups.Limits{}, false},
		{"clone3 memory_max", cgroups.Limits{MemoryMax: 64 << 20}, false},
		{"fallback", cgroups.Limits{}, true},
		{"fallback memory_max", cgroups.Limits{MemoryMax: 64 << 20}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := tree.Group(strings.ReplaceAll(tt.name, " ", "-"))
			if _, err := g.Setup(tt.lim); err != nil {
				t.Fatal(err)
			}
			js, err := g.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer cgroups.CloseJoins(js)
			a := &spawnAttr{cgroups: js, noClone3: tt.noClone3}
			out, err := spawnCat(t, a)
			if err != nil {
				t.Fatal(err)
			}
			if a.clonedIn == tt.noClone3 {
				if !tt.noClone3 && os.Getenv("CI") != "true" {
					t.Skipf("no clone3 with CLONE_INTO_CGROUP here: the fallback ran")
				}
				t.Errorf("clonedIn = %v with noClone3 = %v", a.clonedIn, tt.noClone3)
			}
			cg := procCgroups(out)
			want := "/" + tree.Name() + "/" + g.Path()
			if !strings.HasSuffix(cg["0"], want) {
				t.Errorf("v2 cgroup %q, want .../%s:\n%s", cg["0"], want, out)
			}
			inMem := strings.Contains(cg["memory"], "/"+tree.Name()+"/")
			if memV1 && inMem != (tt.lim.MemoryMax > 0) {
				t.Errorf("in the v1 memory tree: %v, want %v (memory_max %d):\n%s", inMem, tt.lim.MemoryMax > 0, tt.lim.MemoryMax, out)
			}
			for _, c := range []string{"pids", "cpu", "freezer"} {
				if strings.Contains(cg[c], "/"+tree.Name()) {
					t.Errorf("in the %s tree without a limit there:\n%s", c, out)
				}
			}
		})
	}

	// A v2 cgroup removed after it was opened: clone3 refuses it (no
	// child; ENOENT on Linux 6.18), the fallback's child cannot open its
	// cgroup.procs (ENOENT); each error names the stage and the cgroup.
	g := tree.Group("gone")
	if _, err := g.Setup(cgroups.Limits{}); err != nil {
		t.Fatal(err)
	}
	js, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer cgroups.CloseJoins(js)
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	dir := g.Dir(tree.Tracker())
	for _, tt := range []struct {
		noClone3 bool
		want     string
	}{
		{false, `clone3 into cgroup "` + dir + `": `},
		{true, `join cgroup "` + dir + `/cgroup.procs": `},
	} {
		_, err := spawnCat(t, &spawnAttr{cgroups: js, noClone3: tt.noClone3})
		if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("noClone3 %v: forkExec error = %v, want %q...", tt.noClone3, err, tt.want)
		}
	}
}

// On a host without v2 (here: its v1 hierarchies alone), the tracker is
// v1, the freezer, and a worker joins it by a write in the child, with no
// limit: nothing else lets a stop find what it forked. Not parallel: the
// child is reaped here.
func TestSpawnLegacyCgroup(t *testing.T) {
	host, err := cgroups.Detect()
	if err != nil {
		t.Fatal(err)
	}
	legacy := &cgroups.Host{}
	for _, x := range host.Hierarchies {
		if x.Version == 1 {
			legacy.Hierarchies = append(legacy.Hierarchies, x)
		}
	}
	if os.Getuid() != 0 || legacy.V1(cgroups.Freezer) == nil {
		t.Skip("needs root and a v1 freezer hierarchy")
	}
	tree, err := cgroups.NewTree(legacy, "ringmaster", int(cgroupTrees.Add(1)))
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() {
		if err := tree.Close(time.Now().Add(5 * time.Second)); err != nil {
			t.Error(err)
		}
	})
	if tree.KillMethod() != "v1 freezer" {
		t.Fatalf("KillMethod() = %q on a v1 host with a freezer", tree.KillMethod())
	}
	g := tree.Group("legacy")
	if _, err := g.Setup(cgroups.Limits{}); err != nil {
		t.Fatal(err)
	}
	js, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer cgroups.CloseJoins(js)
	a := &spawnAttr{cgroups: js}
	out, err := spawnCat(t, a)
	if err != nil {
		t.Fatal(err)
	}
	cg := procCgroups(out)
	if want := "/" + tree.Name() + "/legacy"; !strings.HasSuffix(cg["freezer"], want) || a.clonedIn {
		t.Errorf("freezer cgroup %q (clonedIn %v), want .../%s by a write:\n%s", cg["freezer"], a.clonedIn, want, out)
	}
	if strings.Contains(cg["memory"], tree.Name()) || strings.Contains(cg["0"], tree.Name()) {
		t.Errorf("in the memory or v2 tree without a limit there:\n%s", out)
	}
}
