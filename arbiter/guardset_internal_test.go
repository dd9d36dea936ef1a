package arbiter

import (
	"bufio"
	"encoding/binary"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// group starts a shell leading a process group of its own with a sleep in
// it, and returns the shell and the sleep's pid; both are killed and
// reaped when the test ends.
func group(t *testing.T) (*exec.Cmd, int) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 1000 & echo $!; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd, child
}

// killSent reports whether pid is dead or has a SIGKILL pending.
func killSent(pid int) bool {
	if testproc.DeadOrZombie(pid) {
		return true
	}
	status, err := os.ReadFile(procfs.Path(pid, "status"))
	if err != nil {
		return true
	}
	for line := range strings.Lines(string(status)) {
		k, v, _ := strings.Cut(line, ":")
		if n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64); (k == "SigPnd" || k == "ShdPnd") && n&(1<<(syscall.SIGKILL-1)) != 0 {
			return true
		}
	}
	return false
}

// A guardian without a tree kills, when its arbiter is gone, the process
// group and the process of each worker it knows: those it was forked
// knowing and those added since, not one removed, nor one it was never
// told of. Not parallel: its children are reaped here.
func TestGuardianKillsItsWorkers(t *testing.T) {
	known, knownChild := group(t)
	added, addedChild := group(t)
	removed, removedChild := group(t)
	other, otherChild := group(t)
	g, err := forkGuardian(nil, []int{known.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if g.kill != "SIGKILL to each worker and its process group" {
		t.Errorf("guardian kills by %q", g.kill)
	}
	l := &guardLink{wfd: g.wfd}
	for _, rec := range []struct {
		op  byte
		pid int
	}{{guardAdd, added.Process.Pid}, {guardAdd, removed.Process.Pid}, {guardRemove, removed.Process.Pid}} {
		if !l.writeLocked(rec.op, rec.pid) {
			t.Fatalf("record %c %d not written", rec.op, rec.pid)
		}
	}
	testproc.WaitFor(t, "the guardian to set itself up", 5*time.Second, func() bool {
		var r procfs.Reader
		st, _ := r.Stat(g.pid)
		return st.Comm == "arbiter-guard"
	})
	fds, err := os.ReadDir(procfs.Path(g.pid, "fd"))
	if err != nil || len(fds) != 1 {
		t.Errorf("guardian without a tree has fds %v (%v), want its pipe alone", fds, err)
	}

	g.abandon()
	if ws := reap(t, g.pid); ws.ExitStatus() != 1 {
		t.Errorf("guardian exit status %v, want 1 (it killed)", ws)
	}
	for _, c := range []*exec.Cmd{known, added} {
		if err := c.Wait(); err == nil || c.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("worker %d ended with %v, want SIGKILL", c.Process.Pid, err)
		}
	}
	for _, pid := range []int{knownChild, addedChild} {
		testproc.WaitFor(t, "the worker's child "+strconv.Itoa(pid)+" to die", 10*time.Second, func() bool { return testproc.DeadOrZombie(pid) })
	}
	// The guardian has exited: what it killed had its SIGKILL before.
	for _, pid := range []int{removed.Process.Pid, removedChild, other.Process.Pid, otherChild} {
		if killSent(pid) {
			t.Errorf("process %d, not a worker of the guardian's, was killed", pid)
		}
	}
}

// A guardian without a tree, told to stand down, exits 0 and kills none
// of its workers. Not parallel: its children are reaped here.
func TestGuardianStandsDownWithoutTree(t *testing.T) {
	w, child := group(t)
	g, err := forkGuardian(nil, []int{w.Process.Pid})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.standDown(); err != nil {
		t.Fatal(err)
	}
	if ws := reap(t, g.pid); ws.ExitStatus() != 0 || ws.Signaled() {
		t.Errorf("guardian exit status %v, want 0", ws)
	}
	for _, pid := range []int{w.Process.Pid, child} {
		if killSent(pid) {
			t.Errorf("a guardian that stood down killed process %d", pid)
		}
	}
}

// guardPipe returns a pipe whose write end is non-blocking, as a
// guardian's is, and a function that reads the records written to it so
// far; both ends are closed when the test ends.
func guardPipe(t *testing.T) (wfd int, read func() []string) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(p[0])
		unix.Close(p[1])
	})
	return p[1], func() []string {
		var recs []string
		b := make([]byte, 8)
		for {
			n, err := unix.Read(p[0], b)
			if n != 8 || err != nil {
				return recs
			}
			recs = append(recs, string(rune(binary.NativeEndian.Uint32(b)))+" "+strconv.Itoa(int(binary.NativeEndian.Uint32(b[4:]))))
		}
	}
}

// runTrue runs /bin/true through forkExec, registering with the guardian
// of l, reaps it, and returns its pid, its status and forkExec's error.
func runTrue(t *testing.T, l *guardLink) (int, unix.WaitStatus, error) {
	t.Helper()
	pid, pidfd, err := forkExec(&spawnAttr{path: "/bin/true", argv: []string{"true"}, umask: -1, guard: l}, nil)
	if pidfd >= 0 {
		unix.Close(pidfd)
	}
	var ws unix.WaitStatus
	if pid > 0 {
		ws = reap(t, pid)
	}
	return pid, ws, err
}

// A spawned child registers itself with the guardian, with its own pid,
// before it execs. Not parallel: the children are reaped here.
func TestSpawnRegisters(t *testing.T) {
	t.Run("registers", func(t *testing.T) {
		wfd, read := guardPipe(t)
		pid, ws, err := runTrue(t, &guardLink{wfd: wfd})
		if err != nil || ws.ExitStatus() != 0 {
			t.Fatalf("forkExec = %v, exit %v", err, ws)
		}
		if got, want := read(), []string{"A " + strconv.Itoa(pid)}; !slices.Equal(got, want) {
			t.Errorf("records %q, want %q", got, want)
		}
	})
	// A guardian that died is no failure: its replacement learns the
	// worker from the reaper. The SIGPIPE the write raised never
	// reaches the worker.
	t.Run("guardian gone", func(t *testing.T) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			t.Fatal(err)
		}
		unix.Close(p[0])
		defer unix.Close(p[1])
		_, ws, err := runTrue(t, &guardLink{wfd: p[1]})
		if err != nil || ws.ExitStatus() != 0 || ws.Signaled() {
			t.Errorf("forkExec = %v, status %v; want the worker run to its end", err, ws)
		}
	})
	t.Run("not a write end", func(t *testing.T) {
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			t.Fatal(err)
		}
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		pid, ws, err := runTrue(t, &guardLink{wfd: p[0]})
		if want := "register with the guardian: bad file descriptor"; err == nil || err.Error() != want {
			t.Errorf("forkExec error = %v, want %q", err, want)
		}
		if pid <= 0 || ws.ExitStatus() != 127 {
			t.Errorf("pid %d, status %v; want a child that exited 127", pid, ws)
		}
	})
	// A full pipe holds the child until the guardian reads: no worker
	// runs unregistered.
	t.Run("pipe full", func(t *testing.T) {
		wfd, read := guardPipe(t)
		filler := 0
		for {
			if _, err := unix.Write(wfd, guardRec('F', 1)); err != nil {
				break
			}
			filler++
		}
		type result struct {
			pid int
			err error
			ws  unix.WaitStatus
		}
		done := make(chan result, 1)
		go func() {
			pid, pidfd, err := forkExec(&spawnAttr{path: "/bin/true", argv: []string{"true"}, umask: -1, guard: &guardLink{wfd: wfd}}, nil)
			if pidfd >= 0 {
				unix.Close(pidfd)
			}
			var ws unix.WaitStatus
			if pid > 0 {
				_, _ = unix.Wait4(pid, &ws, 0, nil)
			}
			done <- result{pid, err, ws}
		}()
		var recs []string
		var res result
		testproc.WaitFor(t, "the spawn to end once the pipe is read", 10*time.Second, func() bool {
			recs = append(recs, read()...)
			select {
			case res = <-done:
				recs = append(recs, read()...)
				return true
			default:
				return false
			}
		})
		if res.err != nil || res.ws.ExitStatus() != 0 {
			t.Fatalf("forkExec = %v, exit %v", res.err, res.ws)
		}
		if want := "A " + strconv.Itoa(res.pid); len(recs) != filler+1 || recs[filler] != want {
			t.Errorf("%d records, the last %q; want %d, the last %q", len(recs), recs[len(recs)-1], filler+1, want)
		}
	})
}
