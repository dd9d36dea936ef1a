package procfs

import (
	"errors"
	"os"
	"testing"
)

func TestStatSelf(t *testing.T) {
	var r Reader
	st, err := r.Stat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != os.Getppid() {
		t.Errorf("PPid = %d, want %d", st.PPid, os.Getppid())
	}
	// The main thread's state: running or asleep, never a zombie's.
	if st.State != 'R' && st.State != 'S' {
		t.Errorf("State = %q, want 'R' or 'S'", st.State)
	}
	_, res, err := r.Statm(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Both count the same resident pages, read a moment apart.
	if st.RSS == 0 || res == 0 || st.RSS > 2*res || res > 2*st.RSS {
		t.Errorf("RSS = %d pages from stat, %d from statm", st.RSS, res)
	}
}

func TestStatGone(t *testing.T) {
	var r Reader
	if _, err := r.Stat(1 << 30); !errors.Is(err, ErrNoProcess) {
		t.Errorf("Stat(no such pid) = %v, want ErrNoProcess", err)
	}
}
