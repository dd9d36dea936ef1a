package arbiter

import (
	"os/exec"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// reaped starts the reaper for the test and returns the orphans' channel.
func reaped(t *testing.T) chan exitStatus {
	t.Helper()
	orphans := make(chan exitStatus, 64)
	theReaper.acquire(orphans, false)
	t.Cleanup(func() { theReaper.release(orphans) })
	return orphans
}

// guardedSleeper spawns /bin/sleep through the reaper, registering with l's
// guardian, and returns it and its exit's channel.
func guardedSleeper(t *testing.T, l *guardLink) (proc, chan exitStatus) {
	t.Helper()
	exits := make(chan exitStatus, 1)
	p, err := spawn(&spawnAttr{path: "/bin/sleep", argv: []string{"sleep", "1000"}, umask: -1, guard: l}, exits, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Signal(syscall.SIGKILL) })
	return p, exits
}

func exitOf(t *testing.T, exits <-chan exitStatus) exitStatus {
	t.Helper()
	select {
	case st := <-exits:
		return st
	case <-time.After(10 * time.Second):
		t.Fatal("no exit within 10s")
		return exitStatus{}
	}
}

func checkRecs(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: records %q, want %q", what, got, want)
	}
}

// The reaper tells a worker's guardian of its exit before it reaps it.
// Not parallel: the hooks and the reaper are the process's.
func TestReaperTellsGuardian(t *testing.T) {
	reaped(t)
	t.Run("exit", func(t *testing.T) {
		wfd, read := guardPipe(t)
		p, exits := guardedSleeper(t, &guardLink{wfd: wfd})
		_ = p.Signal(syscall.SIGKILL)
		exitOf(t, exits)
		pid := strconv.Itoa(p.Pid())
		checkRecs(t, "a worker killed", read(), "A "+pid, "R "+pid)
	})
	// A child that registered and then failed (its exec) is removed by
	// its spawner, which knows it for a zombie.
	t.Run("failed exec", func(t *testing.T) {
		wfd, read := guardPipe(t)
		_, err := spawn(&spawnAttr{path: "/nonexistent/program", argv: []string{"program"}, umask: -1, guard: &guardLink{wfd: wfd}}, make(chan exitStatus, 1), nil)
		if err == nil {
			t.Fatal("spawn of a missing program succeeded")
		}
		recs := read()
		if len(recs) != 2 || recs[0][0] != 'A' || recs[1] != "R"+recs[0][1:] {
			t.Errorf("records %q, want the child's add and remove", recs)
		}
	})
	// A guardian replaced while a spawn is under way (between the child's
	// fork and its registration) has not heard from the child, which
	// wrote to the old one: the spawner tells it.
	t.Run("guardian replaced", func(t *testing.T) {
		wfd, readOld := guardPipe(t)
		wfd2, readNew := guardPipe(t)
		l := &guardLink{wfd: wfd}
		restore := HoldRegistration(func(int) {
			theReaper.guardDetach(l)
			theReaper.guardAttach(l, wfd2)
		})
		p, exits := guardedSleeper(t, l)
		restore()
		pid := strconv.Itoa(p.Pid())
		checkRecs(t, "the old guardian", readOld(), "A "+pid)
		checkRecs(t, "the new guardian", readNew(), "A "+pid)
		_ = p.Signal(syscall.SIGKILL)
		exitOf(t, exits)
		checkRecs(t, "the new guardian", readNew(), "R "+pid)
	})
	// A worker left running by rm --nostop stays the guardian's, and its
	// exit, an orphan's now, is told all the same.
	t.Run("disowned", func(t *testing.T) {
		wfd, read := guardPipe(t)
		p, _ := guardedSleeper(t, &guardLink{wfd: wfd})
		pid := p.Pid()
		theReaper.disown(pid)
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitRecs(t, read, "A "+strconv.Itoa(pid), "R "+strconv.Itoa(pid))
	})
	// A child adopted across an exec (a worker of the old image) is
	// removed as a spawned one is.
	t.Run("adopted", func(t *testing.T) {
		wfd, read := guardPipe(t)
		cmd := exec.Command("/bin/sleep", "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exits := make(chan exitStatus, 1)
		p, err := theReaper.adopt(cmd.Process.Pid, exits)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Release()
		theReaper.guardWith(p.spawn, cmd.Process.Pid, &guardLink{wfd: wfd})
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		if st := exitOf(t, exits); st.pid != cmd.Process.Pid {
			t.Fatalf("exit of %d, want %d's", st.pid, cmd.Process.Pid)
		}
		pid := strconv.Itoa(cmd.Process.Pid)
		checkRecs(t, "an adopted child killed", read(), "A "+pid, "R "+pid)
	})
	// Spawned while no guardian runs, a worker gets the parent-death
	// signal instead, and the arbiter is not guarded until it is gone.
	t.Run("no guardian", func(t *testing.T) {
		wfd, read := guardPipe(t)
		l := newGuardLink()
		p, exits := guardedSleeper(t, l)
		theReaper.guardAttach(l, wfd)
		if theReaper.guarded(l) {
			t.Error("guarded with a worker that has the parent-death signal")
		}
		_ = p.Signal(syscall.SIGKILL)
		exitOf(t, exits)
		if !theReaper.guarded(l) {
			t.Error("not guarded once that worker is gone")
		}
		checkRecs(t, "a guardian started after the worker", read(), "R "+strconv.Itoa(p.Pid()))
	})
}

// waitRecs reads records until it has as many as want, for at most 10s,
// and checks them.
func waitRecs(t *testing.T, read func() []string, want ...string) {
	t.Helper()
	var got []string
	testproc.WaitFor(t, "the guardian's records", 10*time.Second, func() bool {
		got = append(got, read()...)
		return len(got) >= len(want)
	})
	checkRecs(t, "records", got, want...)
}
