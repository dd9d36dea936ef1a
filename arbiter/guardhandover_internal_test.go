package arbiter

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// bareArbiter is an Arbiter with a logger and a guardian link, and the
// reaper running, as Run has them when it starts the guardian.
func bareArbiter(t *testing.T) (*Arbiter, *syncBuf) {
	t.Helper()
	reaped(t)
	var buf syncBuf
	return &Arbiter{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), glink: newGuardLink()}, &buf
}

func cloexec(t *testing.T, fd int) bool {
	t.Helper()
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fl&unix.FD_CLOEXEC != 0
}

// guardianOut hands the guardian over, still running, its write end kept
// open across an exec; guardianBack, after an exec that failed, keeps it
// as before, and it stands down at the end. Not parallel: the reaper is
// the process's.
func TestGuardianOutAndBack(t *testing.T) {
	a, log := bareArbiter(t)
	a.startGuardian()
	if !a.guarded() {
		t.Fatalf("not guarded once the guardian started:\n%s", log)
	}
	st, err := a.guardianOut()
	if err != nil || st == nil {
		t.Fatalf("guardianOut = %+v, %v", st, err)
	}
	if cloexec(t, st.WFD) {
		t.Errorf("guardianOut: fd %d is closed on exec", st.WFD)
	}
	if testproc.DeadOrZombie(st.Pid) {
		t.Errorf("guardianOut: guardian %d is gone", st.Pid)
	}
	a.guardianBack()
	if !cloexec(t, st.WFD) {
		t.Errorf("guardianBack: fd %d is not closed on exec", st.WFD)
	}
	a.stopGuardian()
	if want := fmt.Sprintf(`msg="guardian stood down" pid=%d`, st.Pid); !strings.Contains(log.String(), want) {
		t.Errorf("log:\n%s\nwant %s", log, want)
	}
}

// With no guardian, guardianOut has none to hand over and guarded says
// so. Not parallel: the reaper and the hook are the process's.
func TestGuardianOutWithoutGuardian(t *testing.T) {
	err := errors.New("guardian: clone: cannot allocate memory")
	guardianFail.Store(&err)
	defer guardianFail.Store(nil)
	a, _ := bareArbiter(t)
	a.startGuardian()
	if a.guarded() {
		t.Error("guarded without a guardian")
	}
	if st, err := a.guardianOut(); st != nil || err != nil {
		t.Errorf("guardianOut = %+v, %v; want nil, nil", st, err)
	}
	a.guardianBack()
	a.stopGuardian()
}

// A state that does not name a guardian's write end is not adopted: a new
// guardian starts, and the log says why. Not parallel: the reaper is the
// process's.
func TestGuardianNotAdopted(t *testing.T) {
	a, log := bareArbiter(t)
	null, err := unix.Open(os.DevNull, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(null)
	a.startGuardianFrom(&guardState{Pid: 1, WFD: null, Kill: "?"})
	defer a.stopGuardian()
	if want := fmt.Sprintf(`msg="guardian not adopted; a new one starts" pid=1 err="fd %d is not a pipe"`, null); !strings.Contains(log.String(), want) ||
		!strings.Contains(log.String(), `msg="guardian started"`) {
		t.Errorf("log:\n%s\nwant %s, then a guardian started", log, want)
	}
	if !a.guarded() {
		t.Error("not guarded by the new guardian")
	}
}

// Only a guardian's write end is taken for one.
func TestCheckGuardPipe(t *testing.T) {
	t.Parallel()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	for _, tt := range []struct {
		name string
		fd   int
		want string
	}{
		{"read end", p[0], fmt.Sprintf("fd %d is not a guardian's write end (write-only, non-blocking)", p[0])},
		{"blocking write end", p[1], fmt.Sprintf("fd %d is not a guardian's write end (write-only, non-blocking)", p[1])},
		{"closed", 1 << 20, fmt.Sprintf("fd %d: %v", 1<<20, syscall.EBADF)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkGuardPipe(tt.fd); err == nil || err.Error() != tt.want {
				t.Errorf("checkGuardPipe(%s) = %v, want %q", tt.name, err, tt.want)
			}
		})
	}
	if err := unix.SetNonblock(p[1], true); err != nil {
		t.Fatal(err)
	}
	if err := checkGuardPipe(p[1]); err != nil {
		t.Errorf("checkGuardPipe(a non-blocking write end) = %v, want nil", err)
	}
}
