package cgroups

import (
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// files is a readFile over a map, for the v2 files Parse reads.
func files(m map[string]string) func(string) ([]byte, error) {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cgroup     string
		mountinfo  string
		files      map[string]string
		want       []*Hierarchy
		mode       string
		memory     string // Dir of the v1 memory hierarchy, if any
		unifiedDir string
	}{
		{
			// This machine: v2 gives tracking only; memory, pids and cpu
			// live on v1, and our memory cgroup is not the root.
			name: "hybrid",
			cgroup: `9:name=systemd:/
8:pids:/
6:freezer:/
4:memory:/process_api/9a17
2:cpuacct:/
1:cpu:/
0::/
`,
			mountinfo: `30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:33 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`,
			files: map[string]string{"/sys/fs/cgroup/unified/cgroup.controllers": "hugetlb\n", "/sys/fs/cgroup/unified/cgroup.subtree_control": ""},
			want: []*Hierarchy{
				{Version: 1, Name: "systemd", Mount: "/sys/fs/cgroup/systemd", Path: "/", Dir: "/sys/fs/cgroup/systemd"},
				{Version: 1, Controllers: []string{"pids"}, Mount: "/sys/fs/cgroup/pids", Path: "/", Dir: "/sys/fs/cgroup/pids"},
				{Version: 1, Controllers: []string{"freezer"}, Mount: "/sys/fs/cgroup/freezer", Path: "/", Dir: "/sys/fs/cgroup/freezer"},
				{Version: 1, Controllers: []string{"memory"}, Mount: "/sys/fs/cgroup/memory", Path: "/process_api/9a17", Dir: "/sys/fs/cgroup/memory/process_api/9a17"},
				{Version: 1, Controllers: []string{"cpuacct"}, Mount: "/sys/fs/cgroup/cpuacct", Path: "/", Dir: "/sys/fs/cgroup/cpuacct"},
				{Version: 1, Controllers: []string{"cpu"}, Mount: "/sys/fs/cgroup/cpu", Path: "/", Dir: "/sys/fs/cgroup/cpu"},
				{Version: 2, Controllers: []string{"hugetlb"}, Mount: "/sys/fs/cgroup/unified", Path: "/", Dir: "/sys/fs/cgroup/unified"},
			},
			mode:       "hybrid",
			memory:     "/sys/fs/cgroup/memory/process_api/9a17",
			unifiedDir: "/sys/fs/cgroup/unified",
		},
		{
			// A systemd service on a current distribution.
			name:   "unified",
			cgroup: "0::/system.slice/ringmaster.service\n",
			mountinfo: `22 1 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
28 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`,
			files: map[string]string{
				"/sys/fs/cgroup/system.slice/ringmaster.service/cgroup.controllers":     "cpuset cpu io memory pids\n",
				"/sys/fs/cgroup/system.slice/ringmaster.service/cgroup.subtree_control": "memory pids\n",
			},
			want: []*Hierarchy{{
				Version: 2, Controllers: []string{"cpuset", "cpu", "io", "memory", "pids"}, Enabled: []string{"memory", "pids"},
				Mount: "/sys/fs/cgroup", Path: "/system.slice/ringmaster.service", Dir: "/sys/fs/cgroup/system.slice/ringmaster.service",
			}},
			mode:       "unified",
			unifiedDir: "/sys/fs/cgroup/system.slice/ringmaster.service",
		},
		{
			// An old Docker container: v1 only, each hierarchy's subtree
			// mounted read-only as its root, cpu and cpuacct together.
			name: "legacy container",
			cgroup: `12:pids:/docker/abc
11:memory:/docker/abc
4:cpu,cpuacct:/docker/abc
`,
			mountinfo: `401 400 0:60 /docker/abc /sys/fs/cgroup/pids ro,nosuid,nodev,noexec,relatime master:18 - cgroup cgroup rw,pids
402 400 0:61 /docker/abc /sys/fs/cgroup/memory ro,nosuid,nodev,noexec,relatime master:19 - cgroup cgroup rw,memory
403 400 0:62 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime master:20 - cgroup cgroup rw,cpu,cpuacct
`,
			want: []*Hierarchy{
				{Version: 1, Controllers: []string{"pids"}, Mount: "/sys/fs/cgroup/pids", Path: "/docker/abc", Dir: "/sys/fs/cgroup/pids", ReadOnly: true},
				{Version: 1, Controllers: []string{"memory"}, Mount: "/sys/fs/cgroup/memory", Path: "/docker/abc", Dir: "/sys/fs/cgroup/memory", ReadOnly: true},
				{Version: 1, Controllers: []string{"cpu", "cpuacct"}, Mount: "/sys/fs/cgroup/cpu,cpuacct", Path: "/docker/abc", Dir: "/sys/fs/cgroup/cpu,cpuacct", ReadOnly: true},
			},
			mode:   "legacy",
			memory: "/sys/fs/cgroup/memory",
		},
		{
			// A bind mount of the same hierarchy, read-only, listed first;
			// a mount point with a space; a hierarchy not mounted here.
			name: "second mount, escapes",
			cgroup: `5:memory:/a
1:blkio:/
0::/a b
`,
			mountinfo: `50 1 0:31 / /ro/memory ro,relatime - cgroup cgroup rw,memory
51 1 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
52 1 0:32 / /sys/fs/my\040cgroup rw - cgroup2 none rw
`,
			files: map[string]string{"/sys/fs/my cgroup/a b/cgroup.controllers": "memory pids"},
			want: []*Hierarchy{
				{Version: 1, Controllers: []string{"memory"}, Mount: "/sys/fs/cgroup/memory", Path: "/a", Dir: "/sys/fs/cgroup/memory/a"},
				{Version: 2, Controllers: []string{"memory", "pids"}, Mount: "/sys/fs/my cgroup", Path: "/a b", Dir: "/sys/fs/my cgroup/a b"},
			},
			mode:       "hybrid",
			memory:     "/sys/fs/cgroup/memory/a",
			unifiedDir: "/sys/fs/my cgroup/a b",
		},
		{
			name:      "none",
			cgroup:    "",
			mountinfo: "21 26 0:20 / /proc rw,relatime - proc proc rw\n",
			mode:      "none",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := Parse(tt.cgroup, tt.mountinfo, files(tt.files))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if diff := cmp.Diff(tt.want, h.Hierarchies); diff != "" {
				t.Errorf("Parse hierarchies (-want +got):\n%s", diff)
			}
			if got := h.Mode(); got != tt.mode {
				t.Errorf("Mode() = %q, want %q", got, tt.mode)
			}
			var mem, uni string
			if x := h.V1(Memory); x != nil {
				mem = x.Dir
			}
			if x := h.Unified(); x != nil {
				uni = x.Dir
			}
			if mem != tt.memory || uni != tt.unifiedDir {
				t.Errorf("V1(memory).Dir, Unified().Dir = %q, %q; want %q, %q", mem, uni, tt.memory, tt.unifiedDir)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ name, cgroup, mountinfo, want string }{
		{"cgroup line", "garbage\n", "", "/proc/self/cgroup line 1"},
		{"relative path", "0::x\n", "", "/proc/self/cgroup line 1"},
		{"mountinfo line", "0::/\n", "1 2 3\n", "/proc/self/mountinfo line 1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tt.cgroup, tt.mountinfo, files(nil))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse(%q, %q) error = %v, want one naming %q", tt.cgroup, tt.mountinfo, err, tt.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"web", "web"},
		{"Web-2_x", "Web-2_x"},
		{"a.b", "a_b-"},
		{"a/b", "a_b-"},
		{"tasks", "tasks-"},
		{"", "-"},
	} {
		got := Name(tt.in)
		if !strings.HasPrefix(got, tt.want) || strings.ContainsAny(got, "./ ") || got == "tasks" {
			t.Errorf("Name(%q) = %q, want %q...", tt.in, got, tt.want)
		}
	}
	if Name("a.b") == Name("a_b") {
		t.Errorf("Name(%q) = Name(%q) = %q: two watchers would share a cgroup", "a.b", "a_b", Name("a_b"))
	}
}

// On a unified host whose cgroup offers memory, pids and cpu, all three are
// enforced on v2 and enabled for the tree's children (a fake cgroupfs in a
// temporary directory stands in for the kernel's).
func TestNewTreeUnified(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	name := TreeName(testPrefix+"fake", os.Getpid(), 1)
	for _, d := range []string{dir, path.Join(dir, name)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path.Join(d, "cgroup.subtree_control"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v2 := &Hierarchy{Version: 2, Controllers: []string{"cpu", "memory", "pids"}, Enabled: []string{"memory"}, Mount: dir, Path: "/", Dir: dir}
	tr, err := NewTree(&Host{Hierarchies: []*Hierarchy{v2}}, testPrefix+"fake", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{Memory, Pids, CPU} {
		if tr.Carrier(c) != v2 {
			t.Errorf("Carrier(%s) = %v, want v2", c, tr.Carrier(c))
		}
	}
	if tr.Tracker() != v2 || !strings.HasPrefix(tr.KillMethod(), "v2") {
		t.Errorf("Tracker() = %v, KillMethod() = %q; want v2", tr.Tracker(), tr.KillMethod())
	}
	// A plain file keeps what the last write put at its start, where the
	// kernel keeps a set: the last controller enabled.
	if b, _ := os.ReadFile(path.Join(dir, name, "cgroup.subtree_control")); !strings.HasPrefix(string(b), "+cpu") {
		t.Errorf("tree's cgroup.subtree_control = %q, want cpu enabled last", b)
	}
}
