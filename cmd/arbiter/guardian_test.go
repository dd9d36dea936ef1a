package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

// daemonizing starts an arbiter whose worker starts a child in its own
// process group, which starts a daemon in a session of its own (testworker
// spawn daemonize), and returns the worker, that child and the daemon.
func daemonizing(t *testing.T) (p *arbiterProc, worker, child, daemon int) {
	t.Helper()
	dir := t.TempDir()
	ini := filepath.Join(dir, "circus.ini")
	file := filepath.Join(dir, "daemon")
	writeINI(t, ini, fmt.Sprintf("[watcher:d]\ncmd = WORKER spawn daemonize %s\n", file))
	p = startArbiter(t, ini)
	waitFor(t, "the daemon's pids in "+file, 10*time.Second, func() bool {
		b, err := os.ReadFile(file)
		return err == nil && func() bool { _, err := fmt.Sscanf(string(b), "%d %d", &child, &daemon); return err == nil }()
	})
	var r procfs.Reader
	st, err := r.Stat(child)
	if err != nil {
		t.Fatal(err)
	}
	worker = st.PPid
	if pg, _ := syscall.Getpgid(child); pg != worker {
		t.Fatalf("the worker's child %d is in process group %d, want the worker's (%d)", child, pg, worker)
	}
	if sid, _ := unix.Getsid(daemon); sid != daemon {
		t.Fatalf("the daemon %d is in session %d, want its own", daemon, sid)
	}
	return p, worker, child, daemon
}

// guardianPid returns the guardian's pid from the arbiter's log, 0 if it
// has not said one started.
func guardianPid(p *arbiterProc) int {
	m := regexp.MustCompile(`msg="guardian started" pid=([0-9]+)`).FindStringSubmatch(p.out.String())
	if m == nil {
		return 0
	}
	pid, _ := strconv.Atoi(m[1])
	return pid
}

// guarded returns the guardian's pid, 0 if the arbiter has not said it
// started one; it skips the test where the arbiter said at start-up that
// its guardian has no cgroup tree to kill (no usable cgroups on this
// host), or that it has none, which CI's host must not.
func guarded(t *testing.T, p *arbiterProc) int {
	t.Helper()
	// Said before any worker starts, but the arbiter's output reaches the
	// buffer through a pipe and a goroutine: it may lag behind a worker.
	waitFor(t, "the arbiter to say whether a guardian started", 10*time.Second, func() bool {
		out := p.out.String()
		return strings.Contains(out, `msg="no guardian: `) || guardianPid(p) != 0
	})
	if out := p.out.String(); strings.Contains(out, `msg="no guardian: `) || strings.Contains(out, `msg="guardian without a cgroup tree: `) {
		if os.Getenv("CI") == "true" && os.Getuid() == 0 {
			t.Fatalf("CI runs as root on a host with cgroups, yet the arbiter started no guardian:\n%s", out)
		}
		t.Skipf("no guardian on this host; the arbiter says why:\n%s", out)
	}
	return guardianPid(p)
}

// Issue 14, item 9: a SIGKILLed arbiter leaves nothing it started running,
// not its worker nor the worker's child in its process group (the
// guardian kills both), not a daemon in a session of its own: the
// guardian kills the arbiter's cgroup tree too. So too when the SIGKILL goes to the arbiter's
// whole process group (a supervisor or a shell killing the job): the
// guardian is not in it. Where the host has no usable cgroups the arbiter
// says so at start-up, and the test says which path it took.
func TestKilledArbiterTakesDaemons(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		group bool
	}{{"SIGKILL to the arbiter", false}, {"SIGKILL to its process group", true}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, worker, child, daemon := daemonizing(t)
			g := guarded(t, p)
			arb := p.cmd.Process.Pid
			target := arb
			if tt.group {
				target = -arb
			}
			if err := syscall.Kill(target, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			p.done <- nil
			waitFor(t, "every descendant to die with the arbiter", 10*time.Second, func() bool {
				return testproc.DeadOrZombie(worker) && testproc.DeadOrZombie(child) && testproc.DeadOrZombie(daemon)
			})
			if g == 0 {
				t.Fatalf("no guardian started:\n%s", p.out.String())
			}
			waitFor(t, "the guardian to exit once its work is done", 10*time.Second, func() bool { return testproc.DeadOrZombie(g) })
			// It removed the tree too, in every hierarchy, before exiting.
			if h, err := cgroups.Detect(); err == nil {
				if left := h.Trees("ringmaster", arb); len(left) > 0 {
					t.Errorf("cgroups left by the guardian: %v", left)
				}
			}
		})
	}
}

// A clean shutdown, by SIGTERM to the arbiter or by SIGINT to its whole
// process group (a Ctrl-C at the terminal), leaves no guardian behind and
// reports none as an orphan. The guardian is out of the arbiter's process
// group, and ignores SIGINT anyway: it is still there, standing guard, when
// the arbiter shuts down, and goes when told to stand down.
func TestGuardianCleanShutdown(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name  string
		group bool
		sig   syscall.Signal
	}{
		{"SIGTERM to the arbiter", false, syscall.SIGTERM},
		{"SIGINT to its process group", true, syscall.SIGINT},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, worker, child, daemon := daemonizing(t)
			g := guarded(t, p)
			if g == 0 {
				t.Fatalf("no guardian started:\n%s", p.out.String())
			}
			arb := p.cmd.Process.Pid
			if pg, _ := syscall.Getpgid(g); pg == arb {
				t.Errorf("the guardian %d is in the arbiter's process group", g)
			}
			if tt.group {
				if err := syscall.Kill(-arb, tt.sig); err != nil {
					t.Fatal(err)
				}
				// Everything in the group has had the signal; the
				// guardian was not in it, and ignores it besides.
				if testproc.DeadOrZombie(g) {
					t.Errorf("the guardian died of a SIGINT to the arbiter's group")
				}
			}
			p.stop(t, tt.sig)
			for _, pid := range []int{worker, child, daemon} {
				if !testproc.DeadOrZombie(pid) {
					t.Errorf("process %d outlived a clean shutdown", pid)
				}
			}
			// Reaped by the arbiter before it exited: gone, not even a
			// zombie left to init.
			if !testproc.Gone(g) {
				t.Errorf("guardian %d still there after the arbiter's exit", g)
			}
			out := p.out.String()
			if regexp.MustCompile(`msg="reaped orphan" pid=` + strconv.Itoa(g) + `\b`).MatchString(out) {
				t.Errorf("the guardian was reported as an orphan:\n%s", out)
			}
			if strings.Contains(out, "guardian exited") || strings.Contains(out, "guardian still running") {
				t.Errorf("the guardian did not stand down quietly:\n%s", out)
			}
		})
	}
}
