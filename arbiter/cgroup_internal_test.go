package arbiter

import (
	"bytes"
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
