package arbiter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// The roles of the test binary that TestCgroupsAcrossExec runs: "out"
// makes an arbiter's cgroups with a worker in its own cgroup, hands them
// over and executes the test binary again, same pid, as "in", which adopts
// them and reports what it finds, one line each, to $ARBITER_CGROUP_REPORT:
// "ok WHAT", "fail WHAT: WHY", "skip WHY", and "done" at the end. "sweep"
// is another arbiter starting beside them.
const (
	roleEnv   = "ARBITER_CGROUP_ROLE"
	reportEnv = "ARBITER_CGROUP_REPORT"
	stateEnv  = "ARBITER_CGROUP_STATE"
	pidEnv    = "ARBITER_CGROUP_PID"
)

// CgroupHandoverRole runs the role $ARBITER_CGROUP_ROLE names, if any, and
// returns its exit code; ok is false when there is none. TestMain calls it
// first.
func CgroupHandoverRole() (code int, ok bool) {
	role := os.Getenv(roleEnv)
	if role == "" {
		return 0, false
	}
	if role == "sweep" {
		return sweepRole(), true
	}
	f, err := os.OpenFile(os.Getenv(reportEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1, true
	}
	defer f.Close()
	r := &roleReport{w: f, log: slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	switch role {
	case "out":
		r.out()
	case "in":
		r.in()
	default:
		r.fail("role", fmt.Errorf("unknown role %q", role))
	}
	return 0, true
}

type roleReport struct {
	w      io.Writer
	log    *slog.Logger
	events roleEvents
}

// roleEvents keeps the events of the role's watcher, published on its
// goroutine.
type roleEvents []pubsub.Event

func (e *roleEvents) Publish(ev pubsub.Event) { *e = append(*e, ev) }

func (r *roleReport) ok(what string)              { fmt.Fprintln(r.w, "ok", what) }
func (r *roleReport) fail(what string, err error) { fmt.Fprintf(r.w, "fail %s: %v\n", what, err) }

// roleArbiter is an arbiter with one watcher, web, whose workers each get
// a cgroup (cgroup = worker) with a pids limit, and nothing running.
func (r *roleReport) roleArbiter() (*Arbiter, *Watcher) {
	a := &Arbiter{log: r.log}
	cfg := config.DefaultWatcher("web")
	cfg.Cgroup = config.Cgroup{Mode: config.CgroupWorker, PidsMax: 50, MemoryMax: 32 << 20}
	w := newWatcher(cfg, nil, a.log, &r.events, nil)
	a.snap.Store(&snapshot{watchers: []*Watcher{w}})
	return a, w
}

// spawnSleep starts a worker of w, slot wid, in the cgroup prepare gives
// it, as the spawner does.
func spawnSleep(w *Watcher, wid int) (int, error) {
	js, done := w.cg.prepare(w.cfg, wid)
	pid, pidfd, err := forkExec(&spawnAttr{path: "/bin/sleep", argv: []string{"sleep", "300"}, umask: -1, cgroups: js}, nil)
	if err != nil {
		done(0, false)
		return 0, err
	}
	unix.Close(pidfd)
	done(pid, true)
	return pid, nil
}

// out is the old image: it hands its cgroups over and executes the test
// binary again.
func (r *roleReport) out() {
	// The spawner gives a worker the parent-death signal, which the
	// kernel sends when the thread that forked it ends, as an exec ends
	// every thread but its caller: fork and exec on one thread.
	runtime.LockOSThread()
	a, w := r.roleArbiter()
	a.startCgroups()
	if a.cg.tree == nil {
		fmt.Fprintln(r.w, "skip no cgroups:", a.cg.info.Reason)
		return
	}
	defer a.closeCgroups() // reached only if the exec fails
	a.attachCgroup(w)
	pid, err := spawnSleep(w, 1)
	if err != nil {
		r.fail("spawn", err)
		return
	}
	defer unix.Kill(pid, unix.SIGKILL)
	// An OOM kill in the worker's cgroup, reported: the new image counts
	// from it.
	if err := hogIn(w.cg.workers[pid]); err != nil {
		r.fail("oom before", err)
		return
	}
	var seen uint64
	w.reportOOM(w.cg.workers[pid], &seen, "")
	w.cg.workerOOMs = map[int]uint64{pid: seen}
	st, err := a.cgroupsOut()
	if err != nil {
		r.fail("out", err)
		return
	}
	b, err := json.Marshal(st)
	if err != nil {
		r.fail("out", err)
		return
	}
	r.ok("out")
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, roleEnv+"=") })
	env = append(env, roleEnv+"=in", stateEnv+"="+string(b), pidEnv+"="+strconv.Itoa(pid))
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	a.cgroupsBack()
	r.fail("exec", err)
}

// in is the new image: it adopts the cgroups and checks them.
func (r *roleReport) in() {
	defer fmt.Fprintln(r.w, "done")
	var st cgroupState
	if err := json.Unmarshal([]byte(os.Getenv(stateEnv)), &st); err != nil {
		r.fail("state", err)
		return
	}
	pid, _ := strconv.Atoi(os.Getenv(pidEnv))
	a, w := r.roleArbiter()
	if err := a.startCgroupsFrom(&st); err != nil {
		r.fail("adopt", err)
		return
	}
	a.attachCgroupFrom(w, st.Watchers["web"], []int{pid})
	// Whatever fails below, nothing is left running or made.
	defer func() {
		a.closeCgroups()
		for {
			if _, err := unix.Wait4(-1, nil, 0, nil); err != nil {
				break
			}
		}
	}()
	tree := a.cg.tree
	r.check("one tree", func() error {
		host, err := hostCgroups()
		if err != nil {
			return err
		}
		var want []string
		for _, d := range st.Tree.Dirs {
			want = append(want, d.Dir)
		}
		got := host.Trees("ringmaster", os.Getpid())
		slices.Sort(got)
		if !slices.Equal(got, want) || !slices.Equal(tree.Dirs(), want) {
			return fmt.Errorf("trees %v, adopted %v, want those handed over, %v", got, tree.Dirs(), want)
		}
		return nil
	})
	r.check("locks close-on-exec", func() error {
		for _, fd := range tree.LockFDs() {
			if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				return fmt.Errorf("lock fd %d: flags %#x, %v", fd, flags, err)
			}
		}
		return nil
	})
	r.check("worker in its cgroup", func() error { return inCgroup(w, pid) })
	r.check("limit", func() error {
		x := tree.Carrier(cgroups.Pids)
		if x == nil {
			return errors.New("no pids controller: the test needs one")
		}
		b, err := os.ReadFile(path.Join(w.cg.workers[pid].Dir(x), "pids.max"))
		if s := strings.TrimSpace(string(b)); err != nil || s != "50" {
			return fmt.Errorf("pids.max %q, %v; want 50, as set before the exec", s, err)
		}
		return nil
	})
	r.check("sweep leaves it alone", func() error { return sweptBeside(tree.Dirs()) })
	r.check("oom", func() error { return r.oomIn(w, pid) })
	pid2 := 0
	r.check("spawn", func() error {
		var err error
		if pid2, err = spawnSleep(w, 2); err != nil {
			return err
		}
		if g := w.cg.workers[pid2]; g == nil || g.Path() != "web/wid2-2" {
			return fmt.Errorf("worker 2's cgroup %v, want web/wid2-2: numbered after those made before the exec", g)
		}
		return inCgroup(w, pid2)
	})
	r.check("kill", func() error {
		if err := w.cg.group.Kill(); err != nil {
			return err
		}
		if err := w.cg.group.Wait(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		for _, p := range []int{pid, pid2} {
			var ws unix.WaitStatus
			if _, err := unix.Wait4(p, &ws, 0, nil); err != nil || ws.Signal() != unix.SIGKILL {
				return fmt.Errorf("worker %d: %v, %v; want killed", p, ws, err)
			}
		}
		return nil
	})
	r.check("closed", func() error {
		a.closeCgroups()
		for _, d := range tree.Dirs() {
			if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("%s still there after closing (%v)", d, err)
			}
		}
		return nil
	})
}

// oomIn runs a process that eats memory without end in worker pid's
// cgroup, adopted, and checks that the memory limit set before the exec
// has the OOM killer kill it, and that the watcher reports it as an oom
// event, counted from what was reported before the exec.
func (r *roleReport) oomIn(w *Watcher, pid int) error {
	g := w.cg.workers[pid]
	if g == nil {
		return fmt.Errorf("worker %d has no cgroup", pid)
	}
	if w.cg.root.tree.Carrier(cgroups.Memory) == nil {
		return errors.New("no memory controller: the test needs one")
	}
	seen := w.cg.workerOOMs[pid]
	if seen != 1 {
		return fmt.Errorf("worker %d's OOM kills reported before the exec: %d, want the 1 reported then", pid, seen)
	}
	// The worker's cgroup with the limits it was made with, to join.
	jg, err := w.cg.root.tree.AdoptGroup(g.Path(), cgroupLimits(w.cfg.Cgroup))
	if err != nil {
		return err
	}
	if err := hogIn(jg); err != nil {
		return err
	}
	w.reportOOM(g, &seen, fmt.Sprintf(" (worker %d's cgroup)", pid))
	want := fmt.Sprintf("cgroup.memory_max 32M reached: the kernel's OOM killer killed 1 process (worker %d's cgroup)", pid)
	if len(r.events) != 1 || r.events[0].Kind != pubsub.OOM || r.events[0].Reason != want || seen != 2 {
		return fmt.Errorf("events %+v, %d kills seen; want one oom event: %q, and 2 seen", r.events, seen, want)
	}
	return nil
}

// hogIn runs tail /dev/zero, which eats memory without end, in g, and
// checks that the OOM killer kills it.
func hogIn(g *cgroups.Group) error {
	js, err := g.Open()
	if err != nil {
		return err
	}
	hog, pidfd, err := forkExec(&spawnAttr{path: "/usr/bin/tail", argv: []string{"tail", "/dev/zero"}, umask: -1, cgroups: js}, nil)
	cgroups.CloseJoins(js)
	if err != nil {
		return err
	}
	unix.Close(pidfd)
	var ws unix.WaitStatus
	if _, err := unix.Wait4(hog, &ws, 0, nil); err != nil || ws.Signal() != unix.SIGKILL {
		return fmt.Errorf("tail /dev/zero under cgroup.memory_max 32M: %v, %v; want killed by the OOM killer", ws, err)
	}
	return nil
}

func (r *roleReport) check(what string, f func() error) {
	if err := f(); err != nil {
		r.fail(what, err)
		return
	}
	r.ok(what)
}

// inCgroup checks that worker pid of w is in its cgroup in every
// hierarchy it joined.
func inCgroup(w *Watcher, pid int) error {
	g := w.cg.workers[pid]
	if g == nil {
		return fmt.Errorf("worker %d has no cgroup", pid)
	}
	ps, err := g.Procs()
	if err != nil || !slices.Contains(ps, pid) {
		return fmt.Errorf("worker %d not among %s's processes %v (%v)", pid, g.Path(), ps, err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return err
	}
	x := w.cg.root.tree.Carrier(cgroups.Pids)
	if x != nil && !strings.Contains(string(b), strings.TrimPrefix(g.Dir(x), x.Mount)+"\n") {
		return fmt.Errorf("worker %d is not in %s:\n%s", pid, g.Dir(x), b)
	}
	return nil
}

// sweptBeside starts another arbiter's tree beside the adopted one, which
// sweeps the trees it finds, and checks that it left each of dirs alone,
// as locked, and that they are still there.
func sweptBeside(dirs []string) error {
	cmd := exec.Command("/proc/self/exe", "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=sweep")
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("sweep: %w\n%s", err, out)
	}
	for _, d := range dirs {
		if !strings.Contains(string(out), "unswept "+d+"\tlocked") {
			return fmt.Errorf("the sweep did not leave %s alone as locked:\n%s", d, out)
		}
		if _, err := os.Stat(d); err != nil {
			return fmt.Errorf("after the sweep: %w", err)
		}
	}
	return nil
}

// sweepRole is the "sweep" role: an arbiter's tree made beside the others,
// which says what it swept ("swept DIR") and left alone ("unswept
// DIR\tREASON"), and then closed.
func sweepRole() int {
	host, err := cgroups.Detect()
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	tr, err := cgroups.NewTree(host, "ringmaster", 1)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	for _, d := range tr.Swept() {
		fmt.Println("swept", d)
	}
	for _, u := range tr.Unswept() {
		fmt.Printf("unswept %s\t%s\n", u.Dir, u.Reason)
	}
	if err := tr.Close(time.Now().Add(5 * time.Second)); err != nil {
		fmt.Println("error", err)
		return 1
	}
	return 0
}
