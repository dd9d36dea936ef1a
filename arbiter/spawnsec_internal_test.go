package arbiter

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// spawnStatus runs /bin/cat /proc/self/status /proc/self/limits through
// forkExec with a's credentials and limits and returns its Uid, Gid, Groups
// and "Max file size" lines, and forkExec's
// error; setup is any other failure. The child is reaped here. It calls no
// t.Fatal, so that it can run on a goroutine of its own.
func spawnStatus(a *spawnAttr) (ids string, spawnErr, setup error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", nil, err
	}
	defer r.Close()
	a.path, a.argv, a.umask, a.files = "/bin/cat", []string{"cat", "/proc/self/status", "/proc/self/limits"}, -1, []*os.File{nil, w, w}
	pid, pidfd, spawnErr := forkExec(a, nil)
	w.Close()
	if pid > 0 {
		var ws unix.WaitStatus
		if _, err := unix.Wait4(pid, &ws, 0, nil); err != nil {
			return "", spawnErr, fmt.Errorf("wait4: %w", err)
		}
	}
	if pidfd >= 0 {
		unix.Close(pidfd)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		return "", spawnErr, err
	}
	var lines []string
	for line := range strings.Lines(string(out)) {
		if k, _, _ := strings.Cut(line, ":"); k == "Uid" || k == "Gid" || k == "Groups" || strings.HasPrefix(line, "Max file size") {
			lines = append(lines, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(lines, "; "), spawnErr, nil
}

// Issue 15: ids above 65535 and limits above 4 GiB arrive whole. On 386
// and arm the plain setgroups, setgid and setuid system calls take 16-bit
// ids (Go and glibc use the *32 ones there): 70001 would become 4465, and
// a 32-bit group list would be read as twice as many 16-bit ones; and
// glibc's struct rlimit has 32-bit fields there, where prlimit64 reads two
// 64-bit ones. Not parallel: the child is reaped here, where no arbiter's
// reaper can take it.
func TestSpawnCredentials32(t *testing.T) {
	testproc.NeedRoot(t, "change credentials")
	got, err, setup := spawnStatus(&spawnAttr{setCreds: true, uid: 70000, gid: 70001, groups: []uint32{70001, 70002, 1},
		rlimits: []config.Rlimit{{Name: "fsize", Resource: unix.RLIMIT_FSIZE, Value: 5 << 30}}})
	if err != nil || setup != nil {
		t.Fatal(err, setup)
	}
	want := "Uid: 70000 70000 70000 70000; Gid: 70001 70001 70001 70001; Groups: 1 70001 70002; Max file size 5368709120 5368709120 bytes"
	if got != want {
		t.Errorf("worker's ids and limit = %q, want %q", got, want)
	}
}

// A setgroups the arbiter may not do fails the spawn, naming the groups: a
// worker never runs with the arbiter's groups instead. The fault is
// injected by forking from a thread without CAP_SETGID (capabilities are
// per thread; the thread is discarded afterwards). Not parallel: the child
// is reaped here.
func TestSpawnSetgroupsRefused(t *testing.T) {
	// An unprivileged setgroups fails anyway, but the test drops a
	// capability it must have.
	testproc.NeedRoot(t, "drop a capability")
	type result struct {
		ids        string
		err, setup error
	}
	done := make(chan result, 1)
	go func() {
		// Never unlocked: the goroutine's end ends the thread, and with it
		// the lost capability.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- result{setup: fmt.Errorf("capget: %w", err)}
			return
		}
		data[0].Effective &^= 1 << unix.CAP_SETGID
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- result{setup: fmt.Errorf("capset: %w", err)}
			return
		}
		ids, err, setup := spawnStatus(&spawnAttr{setCreds: true, uid: 0, gid: 0, groups: []uint32{1, 2}})
		done <- result{ids, err, setup}
	}()
	r := <-done
	if r.setup != nil {
		t.Fatal(r.setup)
	}
	want := "setgroups [1 2]: operation not permitted"
	if r.err == nil || r.err.Error() != want {
		t.Fatalf("forkExec error = %v (worker ran with %q), want %q", r.err, r.ids, want)
	}
}
