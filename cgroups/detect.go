package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The controllers this package sets limits with or kills through.
const (
	Memory  = "memory"
	Pids    = "pids"
	CPU     = "cpu"
	Freezer = "freezer"
)

// Hierarchy is one cgroup hierarchy the process belongs to, as the kernel
// reports it.
type Hierarchy struct {
	// Version is 2 for the unified hierarchy, 1 otherwise.
	Version int
	// Controllers are those the hierarchy carries: for v1, those bound to
	// it ("cpu", "cpuacct"; a named one such as systemd's has none); for
	// v2, those available in the process's own cgroup (its
	// cgroup.controllers).
	Controllers []string
	// Enabled are, for v2, the controllers already enabled for the
	// children of the process's cgroup (its cgroup.subtree_control).
	Enabled []string
	// Name is a v1 named hierarchy's name ("systemd"), left alone.
	Name string
	// Mount is where it is mounted; Path is the process's cgroup as
	// /proc/self/cgroup gives it; Dir is that cgroup's directory.
	Mount string
	Path  string
	Dir   string
	// ReadOnly is set when the mount is read-only (containers often mount
	// cgroupfs so).
	ReadOnly bool
}

// Has reports whether h carries controller c.
func (h *Hierarchy) Has(c string) bool { return slices.Contains(h.Controllers, c) }

// String names h for logs: "v2" or "v1 memory".
func (h *Hierarchy) String() string {
	if h.Version == 2 {
		return "v2"
	}
	if h.Name != "" {
		return "v1 name=" + h.Name
	}
	return "v1 " + strings.Join(h.Controllers, ",")
}

// Host is what the process's cgroups look like.
type Host struct {
	// Hierarchies are those /proc/self/cgroup lists that are mounted where
	// this process sees them, in its order.
	Hierarchies []*Hierarchy
}

// Mode names the host's layout: "unified" (v2 only), "hybrid" (v2 and
// v1), "legacy" (v1 only) or "none".
func (h *Host) Mode() string {
	v1, v2 := false, false
	for _, x := range h.Hierarchies {
		if x.Version == 2 {
			v2 = true
		} else if x.Name == "" {
			v1 = true
		}
	}
	switch {
	case v1 && v2:
		return "hybrid"
	case v2:
		return "unified"
	case v1:
		return "legacy"
	}
	return "none"
}

// Unified returns the v2 hierarchy, or nil.
func (h *Host) Unified() *Hierarchy {
	for _, x := range h.Hierarchies {
		if x.Version == 2 {
			return x
		}
	}
	return nil
}

// V1 returns the v1 hierarchy carrying controller c, or nil.
func (h *Host) V1(c string) *Hierarchy {
	for _, x := range h.Hierarchies {
		if x.Version == 1 && x.Has(c) {
			return x
		}
	}
	return nil
}

// String summarises h for the log.
func (h *Host) String() string {
	if len(h.Hierarchies) == 0 {
		return "none"
	}
	var parts []string
	for _, x := range h.Hierarchies {
		if x.Name != "" {
			continue
		}
		s := x.String() + " at " + x.Dir
		if x.Version == 2 {
			s += " (controllers: " + strings.Join(x.Controllers, " ") + ")"
		}
		if x.ReadOnly {
			s += " read-only"
		}
		parts = append(parts, s)
	}
	return h.Mode() + ": " + strings.Join(parts, "; ")
}

// Detect reads the process's cgroups from /proc/self/cgroup,
// /proc/self/mountinfo and, for v2, its cgroup's cgroup.controllers. A
// host without cgroups gives an empty Host, not an error.
func Detect() (*Host, error) {
	cg, err := os.ReadFile("/proc/self/cgroup")
	if errors.Is(err, os.ErrNotExist) {
		return &Host{}, nil
	}
	if err != nil {
		return nil, err
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	return Parse(string(cg), string(mi), os.ReadFile)
}

// Parse is [Detect] on given texts: procCgroup is the content of
// /proc/self/cgroup, mountinfo that of /proc/self/mountinfo, and readFile
// reads a v2 cgroup's cgroup.controllers and cgroup.subtree_control.
func Parse(procCgroup, mountinfo string, readFile func(string) ([]byte, error)) (*Host, error) {
	mounts, err := parseMountinfo(mountinfo)
	if err != nil {
		return nil, err
	}
	h := &Host{}
	for n, line := range strings.Split(procCgroup, "\n") {
		if line == "" {
			continue
		}
		id, rest, ok1 := strings.Cut(line, ":")
		list, p, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || !strings.HasPrefix(p, "/") {
			return nil, fmt.Errorf("/proc/self/cgroup line %d: %q is not ID:CONTROLLERS:PATH", n+1, line)
		}
		// A cgroup removed under us reads "/x (deleted)"; nothing can be
		// made under it.
		if strings.HasSuffix(p, " (deleted)") {
			continue
		}
		x := &Hierarchy{Version: 1, Path: p}
		if id == "0" && list == "" {
			x.Version = 2
		} else {
			for _, c := range strings.Split(list, ",") {
				if name, ok := strings.CutPrefix(c, "name="); ok {
					x.Name = name
				} else if c != "" {
					x.Controllers = append(x.Controllers, c)
				}
			}
		}
		m := findMount(mounts, x)
		if m == nil {
			// Not visible in this mount namespace.
			continue
		}
		x.Mount, x.ReadOnly = m.point, m.readOnly
		x.Dir = path.Join(m.point, strings.TrimPrefix(p, m.root))
		if x.Version == 2 {
			x.Controllers = readList(readFile, path.Join(x.Dir, "cgroup.controllers"))
			x.Enabled = readList(readFile, path.Join(x.Dir, "cgroup.subtree_control"))
		}
		h.Hierarchies = append(h.Hierarchies, x)
	}
	return h, nil
}

func readList(readFile func(string) ([]byte, error), name string) []string {
	b, err := readFile(name)
	if err != nil || len(strings.Fields(string(b))) == 0 {
		return nil
	}
	return strings.Fields(string(b))
}

type mount struct {
	root, point string
	fstype      string
	options     []string // per-mount and super-block options together
	readOnly    bool
}

// parseMountinfo reads the cgroup and cgroup2 mounts of a mountinfo text
// (proc(5)): ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - FSTYPE
// SOURCE SUPEROPTIONS.
func parseMountinfo(text string) ([]mount, error) {
	var out []mount
	for n, line := range strings.Split(text, "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		sep := slices.Index(f, "-")
		if sep < 6 || len(f) < sep+4 {
			return nil, fmt.Errorf("/proc/self/mountinfo line %d: %q is malformed", n+1, line)
		}
		fstype := f[sep+1]
		if fstype != "cgroup" && fstype != "cgroup2" {
			continue
		}
		opts := append(strings.Split(f[5], ","), strings.Split(f[sep+3], ",")...)
		out = append(out, mount{
			root:     unescape(f[3]),
			point:    unescape(f[4]),
			fstype:   fstype,
			options:  opts,
			readOnly: slices.Contains(strings.Split(f[5], ","), "ro") || slices.Contains(strings.Split(f[sep+3], ","), "ro"),
		})
	}
	return out, nil
}

// findMount picks the mount of x's hierarchy through which x's cgroup is
// reachable, preferring a writable one: a hierarchy may be mounted more
// than once, and a container may see only a subtree of it.
func findMount(mounts []mount, x *Hierarchy) *mount {
	var best *mount
	for i := range mounts {
		m := &mounts[i]
		if x.Version == 2 {
			if m.fstype != "cgroup2" {
				continue
			}
		} else {
			if m.fstype != "cgroup" {
				continue
			}
			if x.Name != "" && !slices.Contains(m.options, "name="+x.Name) {
				continue
			}
			if !containsAll(m.options, x.Controllers) {
				continue
			}
			if x.Name == "" && len(x.Controllers) == 0 {
				continue
			}
		}
		if m.root != "/" && x.Path != m.root && !strings.HasPrefix(x.Path, m.root+"/") {
			continue
		}
		if best == nil || best.readOnly && !m.readOnly {
			best = m
		}
	}
	return best
}

func containsAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// unescape undoes mountinfo's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// writable reports whether dir is on a writable mount and this process may
// create cgroups in it; why not, if not.
func writable(h *Hierarchy) (bool, string) {
	if h.ReadOnly {
		return false, "mounted read-only"
	}
	if err := unix.Access(h.Dir, unix.W_OK); err != nil {
		return false, fmt.Sprintf("cannot write in %s: %v", h.Dir, err)
	}
	return true, ""
}
