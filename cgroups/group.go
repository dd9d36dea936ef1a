package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// killBudget bounds a kill: freezing a cgroup, or sending SIGKILL until it
// is empty where nothing can freeze it. A process that will not freeze (in
// an uninterruptible sleep, say) must not hold its caller for long.
const killBudget = time.Second

// Group is one cgroup of a [Tree], at the same path in each hierarchy the
// tree uses.
type Group struct {
	t    *Tree
	rel  string
	join []*Hierarchy // set by Setup
}

// Path returns the group's path in the tree ("web/wid1-4").
func (g *Group) Path() string { return g.rel }

// Sub returns the group name below g.
func (g *Group) Sub(name string) *Group { return g.t.Group(path.Join(g.rel, name)) }

// Dir returns the group's directory in hierarchy x ("" when the tree does
// not use x).
func (g *Group) Dir(x *Hierarchy) string {
	if g.t.dirs[x] == "" {
		return ""
	}
	return path.Join(g.t.dirs[x], g.rel)
}

// Setup makes the group in the tracker and in the carrier of each of l's
// limits, and sets them; a limit that is not in l and was set before is
// lifted. unenforced names the controllers l needs that no hierarchy of the
// tree carries: the caller says so, since the group works without them.
//
// A process joins (see [Group.Open]) the tracker, and a carrier only for a
// limit of l: entering a v1 hierarchy is a migration, a write to its
// cgroup.procs that waits for an RCU grace period after a quiet moment
// (milliseconds per spawn), while the v2 tracker is entered at the clone,
// for nothing. So where v2 tracks, a process without a v1 limit is in no v1
// cgroup of the tree, and everything that finds processes (Kill, Wait,
// Procs, Populated) looks in the tracker, where they all are. Where there
// is no usable v2 (a legacy host, or v2 mounted read-only), the tracker is
// a v1 hierarchy, the freezer if it can: every process joins it by a write,
// because it is the only way a stop can find and kill what a worker forked.
func (g *Group) Setup(l Limits) (unenforced []string, err error) {
	t := g.t
	if err := g.mkdir(t.tracker, ""); err != nil {
		return nil, err
	}
	join := []*Hierarchy{t.tracker}
	want := l.Controllers()
	for _, c := range []string{Memory, Pids, CPU} {
		x := t.carriers[c]
		if x == nil {
			if slices.Contains(want, c) {
				unenforced = append(unenforced, c)
			}
			continue
		}
		if !slices.Contains(want, c) {
			if err := g.lift(x, c); err != nil {
				return nil, err
			}
			continue
		}
		if err := g.mkdir(x, c); err != nil {
			return nil, err
		}
		if err := applySettings(g.Dir(x), settings(c, x.Version, l)); err != nil {
			return nil, fmt.Errorf("cgroup %s: %w", g.Dir(x), err)
		}
		if !slices.Contains(join, x) {
			join = append(join, x)
		}
	}
	g.join = join
	return unenforced, nil
}

// mkdir makes the group's directory in x and, on v2 for controller c, its
// parents with c enabled for their children (the tree's own directory has
// it already).
func (g *Group) mkdir(x *Hierarchy, c string) error {
	if x.Version == 2 && c != "" {
		parts := strings.Split(g.rel, "/")
		dir := g.t.dirs[x]
		for _, p := range parts[:len(parts)-1] {
			dir = path.Join(dir, p)
			if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("cgroup: %w", err)
			}
			if err := enable(dir, c); err != nil {
				return err
			}
		}
	}
	if err := os.MkdirAll(g.Dir(x), 0o755); err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

// enable enables controller c for the children of the v2 cgroup dir.
func enable(dir, c string) error {
	b, err := os.ReadFile(path.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	if slices.Contains(strings.Fields(string(b)), c) {
		return nil
	}
	if err := writeFile(path.Join(dir, "cgroup.subtree_control"), "+"+c); err != nil {
		if errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("cgroup: %w (processes in %s itself: a v2 cgroup with controllers for its children may hold none)", err, dir)
		}
		return fmt.Errorf("cgroup: %w", err)
	}
	return nil
}

// lift removes controller c's limit from the group in x, if the group has
// one there.
func (g *Group) lift(x *Hierarchy, c string) error {
	dir := g.Dir(x)
	for _, s := range settings(c, x.Version, Limits{}) {
		if _, err := os.Stat(path.Join(dir, s.file)); err != nil {
			return nil
		}
		if err := writeFile(path.Join(dir, s.file), s.value); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
	}
	return nil
}

// Join is one cgroup a new process is to enter, open for the spawner.
type Join struct {
	// FD is the cgroup's cgroup.procs file, open for writing: writing "0"
	// to it moves the writer into the cgroup. With Clone, FD is instead
	// the v2 cgroup's directory.
	FD int
	// Path is the cgroup.procs file, for errors.
	Path string
	// Clone marks the v2 cgroup: a spawner creates the process in it with
	// clone3's CLONE_INTO_CGROUP (Linux 5.7), which costs nothing, where a
	// write to cgroup.procs is a migration that waits for an RCU grace
	// period (milliseconds after a quiet moment). A spawner that cannot
	// use clone3 opens cgroup.procs relative to FD, in the child, and
	// writes "0" to it.
	Clone bool
}

// Open opens, for each hierarchy a process must join after [Group.Setup],
// the group's directory (v2, a [Join] with Clone) or its cgroup.procs file
// (v1). At most one Join has Clone, since a process is in one v2 cgroup.
// Close them with [CloseJoins].
func (g *Group) Open() ([]Join, error) {
	if g.join == nil {
		return nil, errors.New("BUG: cgroups: Open before Setup")
	}
	var js []Join
	for _, x := range g.join {
		p := path.Join(g.Dir(x), "cgroup.procs")
		name, flags := p, unix.O_WRONLY|unix.O_CLOEXEC
		if x.Version == 2 {
			name, flags = g.Dir(x), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC
		}
		fd, err := unix.Open(name, flags, 0)
		if err != nil {
			CloseJoins(js)
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		js = append(js, Join{FD: fd, Path: p, Clone: x.Version == 2})
	}
	return js, nil
}

// CloseJoins closes the files of js.
func CloseJoins(js []Join) {
	for _, j := range js {
		unix.Close(j.FD)
	}
}

// Kill sends SIGKILL to every process in the group and below it, so that
// none can fork meanwhile (see the package documentation). It takes at
// most about a second.
func (g *Group) Kill() error { return killDir(g.t.tracker, g.Dir(g.t.tracker)) }

// Populated reports whether a process is in the group or below it.
func (g *Group) Populated() (bool, error) {
	return populated(g.t.tracker, g.Dir(g.t.tracker))
}

// Wait waits until the group and those below it are empty, or returns an
// error naming how many processes are left at the deadline.
func (g *Group) Wait(deadline time.Time) error {
	return waitDir(g.t.tracker, g.Dir(g.t.tracker), deadline)
}

// Procs lists the processes in the group and below it.
func (g *Group) Procs() ([]int, error) { return procs(g.Dir(g.t.tracker)) }

// Remove removes the group, and those below it, from every hierarchy. It
// fails with EBUSY while a process is in one of them.
func (g *Group) Remove() error {
	if g.rel == "" {
		return errors.New("BUG: cgroups: Remove of a tree's root; use Tree.Close")
	}
	var errs []error
	for _, d := range g.t.Dirs() {
		if err := removeAll(path.Join(d, g.rel)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Evacuate moves every process of the group back into the supervisor's
// own cgroup in each hierarchy (its leaf, when it moved into one), so that the group can be removed while
// they run on (a watcher removed without stopping its workers).
func (g *Group) Evacuate() error {
	var errs []error
	for x, d := range g.t.dirs {
		ps, err := procs(path.Join(d, g.rel))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, pid := range ps {
			err := writeFile(path.Join(g.t.home(x), "cgroup.procs"), strconv.Itoa(pid))
			if err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// OOMKills returns how many processes of the group the kernel's OOM killer
// has killed since the group was made; ok is false when no hierarchy
// counts them (no memory controller, or a kernel before 4.13 on v1).
func (g *Group) OOMKills() (n uint64, ok bool) {
	x := g.t.carriers[Memory]
	if x == nil {
		return 0, false
	}
	file := "memory.oom_control"
	if x.Version == 2 {
		file = "memory.events"
	}
	b, err := os.ReadFile(path.Join(g.Dir(x), file))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(line, "oom_kill "); found {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// killDir kills everything in the cgroup dir of x and below.
func killDir(x *Hierarchy, dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	deadline := time.Now().Add(killBudget)
	switch {
	case x.Version == 2:
		err := writeFile(path.Join(dir, "cgroup.kill"), "1")
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// Before Linux 5.14: freeze if the kernel can (5.2), so that
		// nothing forks between the listing and the kill.
		if writeFile(path.Join(dir, "cgroup.freeze"), "1") == nil {
			waitFrozen(func() bool { return readKey(path.Join(dir, "cgroup.events"), "frozen") == "1" }, deadline)
			err := signalAll(dir)
			return errors.Join(err, writeFile(path.Join(dir, "cgroup.freeze"), "0"))
		}
	case x.Has(Freezer):
		if err := writeFile(path.Join(dir, "freezer.state"), "FROZEN"); err != nil {
			return err
		}
		waitFrozen(func() bool {
			b, _ := os.ReadFile(path.Join(dir, "freezer.state"))
			return strings.TrimSpace(string(b)) == "FROZEN"
		}, deadline)
		err := signalAll(dir)
		// Killed tasks die only once thawed.
		return errors.Join(err, writeFile(path.Join(dir, "freezer.state"), "THAWED"))
	}
	// Nothing freezes: kill what is listed until nothing is, as long as
	// the budget lasts (a fork bomb without pids.max may outrun it).
	for pause := time.Millisecond; ; pause = min(2*pause, 20*time.Millisecond) {
		ps, err := procs(dir)
		if err != nil || len(ps) == 0 {
			return err
		}
		if err := signalAll(dir); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroup %s: processes still forking after %s of SIGKILL", dir, killBudget)
		}
		time.Sleep(pause)
	}
}

func waitFrozen(frozen func() bool, deadline time.Time) {
	for pause := 100 * time.Microsecond; !frozen() && time.Now().Before(deadline); pause = min(2*pause, 10*time.Millisecond) {
		time.Sleep(pause)
	}
}

// signalAll sends SIGKILL to every process listed in dir and below.
func signalAll(dir string) error {
	ps, err := procs(dir)
	for _, pid := range ps {
		if kerr := unix.Kill(pid, unix.SIGKILL); kerr != nil && kerr != unix.ESRCH && err == nil {
			err = fmt.Errorf("kill %d: %w", pid, kerr)
		}
	}
	return err
}

func populated(x *Hierarchy, dir string) (bool, error) {
	if x.Version == 2 {
		switch readKey(path.Join(dir, "cgroup.events"), "populated") {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
	}
	ps, err := procs(dir)
	return len(ps) > 0, err
}

func waitDir(x *Hierarchy, dir string, deadline time.Time) error {
	for pause := 200 * time.Microsecond; ; pause = min(2*pause, 20*time.Millisecond) {
		busy, err := populated(x, dir)
		if err != nil || !busy {
			return err
		}
		if time.Now().After(deadline) {
			ps, _ := procs(dir)
			return fmt.Errorf("cgroup %s: %d processes still in it", dir, len(ps))
		}
		time.Sleep(pause)
	}
}

// procs lists the processes in the cgroup dir and below; none if it does
// not exist.
func procs(dir string) ([]int, error) {
	out, err := directProcs(dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out, nil
	}
	for _, e := range ents {
		if e.IsDir() {
			more, err := procs(path.Join(dir, e.Name()))
			if err != nil {
				return out, err
			}
			out = append(out, more...)
		}
	}
	return out, nil
}

// directProcs lists the processes in the cgroup dir itself, not those of
// the cgroups below it.
func directProcs(dir string) ([]int, error) {
	b, err := os.ReadFile(path.Join(dir, "cgroup.procs"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil {
			out = append(out, pid)
		}
	}
	return out, nil
}

// readKey returns the value of "key value" in a flat-keyed cgroup file.
func readKey(name, key string) string {
	b, err := os.ReadFile(name)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
