package procfs

import (
	"errors"
	"os"
	"strings"
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

func TestParseStat(t *testing.T) {
	t.Parallel()
	// Fields 3 on: state, ppid, ..., utime (14) 11, stime 12, cutime 13,
	// cstime 14, nice (19) -5, starttime (22) 4242, rss (24) 77, and more.
	const tail = " S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -5 17 18 4242 20 77 22 23 24\n"
	tests := []struct {
		name, in string
		want     Stat
		err      string
	}{
		{"plain", "42 (sleep)" + tail, Stat{Comm: "sleep", State: 'S', PPid: 1, Utime: 11, Stime: 12, Cutime: 13, Cstime: 14,
			Nice: -5, StartTime: 4242, RSS: 77}, ""},
		{"a name with spaces and parentheses", "42 (a (b) c)" + tail, Stat{Comm: "a (b) c", State: 'S', PPid: 1, Utime: 11,
			Stime: 12, Cutime: 13, Cstime: 14, Nice: -5, StartTime: 4242, RSS: 77}, ""},
		{"too few fields", "42 (x) S 1 2 3\n", Stat{}, "parse /proc/42/stat: 6 fields"},
		{"no name", "42 S 1", Stat{}, "parse /proc/42/stat: no ')'"},
		{"not a number", "42 (x) S one" + tail[3:], Stat{}, "parse /proc/42/stat: strconv.Atoi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseStat(42, []byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("parseStat(%q) = %v, want an error with %q", tt.in, err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("parseStat(%q) = %+v, %v, want %+v", tt.in, got, err, tt.want)
			}
		})
	}
}

// A scrape reads the stat of every worker: parsing must not allocate (but
// for the command name).
func TestParseStatAllocs(t *testing.T) {
	b := []byte("42 (sleep) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 -5 17 18 4242 20 77 22 23 24\n")
	if n := testing.AllocsPerRun(100, func() { _, _ = parseStat(42, b) }); n > 1 {
		t.Errorf("parseStat allocates %v times, want at most 1 (the name)", n)
	}
}
