package arbiter_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// closeOnExec reports whether fd is open and closed at an exec.
func closeOnExec(t *testing.T, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatalf("fcntl(%d, F_GETFD): %v", fd, err)
	}
	return fl&unix.FD_CLOEXEC != 0
}

// Upgrades whose exec fails, again and again while a worker floods its
// stdout: each hands over the worker's pipes (kept across an exec) and
// takes them back, and the file holds every line once, whole, in order.
func TestUpgradeFailedExecKeepsOutput(t *testing.T) {
	const (
		size  = 1000
		lines = 50000
	)
	path := filepath.Join(t.TempDir(), "flood.log")
	r := start(t, fmt.Sprintf(`
[watcher:flood]
cmd = WORKER flood %d %d
stdout_stream.class = FileStream
stdout_stream.filename = %s
`, lines*size, size, path))
	last := floodLine(lines-1, size)
	errExec := errors.New("exec refused by the test")
	upgrades, partial := 0, 0
	for !endsWith(path, last) {
		var fds []int
		err := r.Upgrade(context.Background(), func(h *arbiter.Handover) error {
			o := h.Watchers[0].Output
			if o == nil || len(o.Pipes) != 2 {
				return fmt.Errorf("output handed over: %+v, want the worker's two pipes", o)
			}
			for _, p := range o.Pipes {
				if closeOnExec(t, p.FD) {
					t.Errorf("pid %d %s: fd %d is close-on-exec in the hand-over", p.Pid, p.Stream, p.FD)
				}
				if len(p.Partial) > 0 {
					partial++
				}
				fds = append(fds, p.FD)
			}
			if o.Ring.FD < 0 || closeOnExec(t, o.Ring.FD) {
				t.Errorf("kept output's fd %d: not kept across an exec", o.Ring.FD)
			}
			return errExec
		})
		if !errors.Is(err, errExec) {
			t.Fatalf("Upgrade() = %v, want the exec's error", err)
		}
		for _, fd := range fds {
			if !closeOnExec(t, fd) {
				t.Errorf("fd %d not close-on-exec again after the failed exec", fd)
			}
		}
		upgrades++
	}
	t.Logf("%d failed upgrades during the flood, %d of them with a line begun", upgrades, partial)
	if upgrades < 2 {
		t.Errorf("only %d upgrades during the flood", upgrades)
	}
	if first, n := checkFlood(t, []string{path}, size); first != 0 || n != lines {
		t.Errorf("the file holds flood lines %d..%d, want 0..%d", first, first+n-1, lines-1)
	}
	got, _ := r.Watcher("flood").Output().Tail(logs.Query{Lines: 1})
	if len(got) != 1 || got[0].Seq != lines {
		t.Errorf("the last line kept: %+v, want line %d", got, lines)
	}
}
