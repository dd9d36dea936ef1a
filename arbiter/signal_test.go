package arbiter_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// signal reaches the worker, only its children, or the whole tree; a pid
// the watcher does not own is refused.
func TestSignal(t *testing.T) {
	t.Parallel()
	pidfile := filepath.Join(t.TempDir(), "pids")
	r := start(t, `
[watcher:tree]
cmd = WORKER childoutside `+pidfile+`
`)
	pid, child := waitPids(t, pidfile)
	t.Cleanup(func() { _ = syscall.Kill(child, syscall.SIGKILL) })
	w := r.Watcher("tree")
	if err := w.Signal(context.Background(), 424242, syscall.SIGTERM, false, false); !errors.Is(err, arbiter.ErrNoProcess) {
		t.Errorf("Signal(unknown pid) = %v, want ErrNoProcess", err)
	}
	if err := w.Signal(context.Background(), pid, syscall.SIGTERM, true, false); err != nil {
		t.Fatal(err)
	}
	// Its parent, the worker, never waits for it: dead means a zombie.
	waitFor(t, "the child (in its own group) to die", 10*time.Second, func() bool { return testproc.DeadOrZombie(child) })
	if gone(pid) {
		t.Errorf("children = true signalled the worker %d itself", pid)
	}
	if err := w.Signal(context.Background(), 0, syscall.SIGKILL, false, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the worker replaced after a SIGKILL", 10*time.Second, func() bool {
		p := r.pids(t, "tree")
		return len(p) == 1 && p[0] != pid
	})
}

// kill stops one worker gracefully and the pool replaces it; the others
// are untouched.
func TestKill(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:pool]
cmd = WORKER sleep
numprocesses = 3
`)
	waitFor(t, "3 workers", 10*time.Second, func() bool { return len(r.pids(t, "pool")) == 3 })
	before := r.pids(t, "pool")
	w := r.Watcher("pool")
	if err := w.Kill(context.Background(), before[0], 0, 0); err != nil {
		t.Fatal(err)
	}
	if !gone(before[0]) {
		t.Errorf("killed worker %d still exists after Kill returned", before[0])
	}
	after := r.pids(t, "pool")
	if len(after) != 3 || slices.Contains(after, before[0]) || !slices.Contains(after, before[1]) || !slices.Contains(after, before[2]) {
		t.Errorf("pids %v -> %v, want %d replaced and the others kept", before, after, before[0])
	}
	if err := w.Kill(context.Background(), before[0], 0, 0); !errors.Is(err, arbiter.ErrNoProcess) {
		t.Errorf("Kill(gone pid) = %v, want ErrNoProcess", err)
	}
}
