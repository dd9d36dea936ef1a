package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
)

// noon is the time the tests write at when time does not matter.
var noon = time.Date(2026, 11, 23, 12, 0, 0, 0, time.Local)

func openTestFile(t testing.TB, spec config.Stream) *fileSink {
	t.Helper()
	sk, path, err := openFile(spec, "web", "stdout")
	if err != nil {
		t.Fatalf("openFile(%+v) = %v", spec, err)
	}
	if path != spec.Filename && spec.Filename != "" {
		t.Fatalf("openFile(%+v) path = %q, want %q", spec, path, spec.Filename)
	}
	t.Cleanup(func() { sk.close() })
	return sk.(*fileSink)
}

func mustWrite(t *testing.T, s sink, lines string, pid int, at time.Time) {
	t.Helper()
	if err := s.write([]byte(lines), pid, at); err != nil {
		t.Fatalf("write(%q) = %v", lines, err)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func fileNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// numberedLine is line i of TestFileStreamRotation: its number, then a
// filler whose length varies with it, so that lines differ in size.
func numberedLine(i int) string {
	return strconv.Itoa(i) + " " + strings.Repeat("x", i*7%61) + "\n"
}

func TestFileStreamRotation(t *testing.T) {
	t.Parallel()
	const (
		lines    = 20000
		maxBytes = 4096
		backups  = 3
	)
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.Local)
	for _, tc := range []struct {
		name, timeFormat, prefix string
	}{
		{"raw", "", ""},
		{"prefixed", "%Y-%m-%d %H:%M:%S", "2026-11-23 10:00:00 [42] | "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "out.log")
			s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path,
				MaxBytes: maxBytes, BackupCount: backups, TimeFormat: tc.timeFormat})
			rng := rand.New(rand.NewPCG(1, 2))
			for i := 0; i < lines; {
				var batch []byte
				for n := 1 + rng.IntN(200); n > 0 && i < lines; n-- {
					batch = append(batch, numberedLine(i)...)
					i++
				}
				if err := s.write(batch, 42, at); err != nil {
					t.Fatalf("write = %v", err)
				}
			}

			if _, err := os.Stat(fmt.Sprintf("%s.%d", path, backups+1)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s.%d exists (err %v): more than %d old files kept", path, backups+1, err, backups)
			}
			var all []string
			for i := backups; i >= 0; i-- {
				name := path
				if i > 0 {
					name = fmt.Sprintf("%s.%d", path, i)
				}
				content := readString(t, name)
				if len(content) > maxBytes || len(content) == 0 {
					t.Errorf("%s has %d bytes, want 1 to %d", name, len(content), maxBytes)
				}
				all = append(all, strings.SplitAfter(content, "\n")...)
				all = all[:len(all)-1] // after the last "\n"
			}
			first, _, _ := strings.Cut(strings.TrimPrefix(all[0], tc.prefix), " ")
			n, err := strconv.Atoi(first)
			if err != nil {
				t.Fatalf("first line kept %q: %v", all[0], err)
			}
			for i, line := range all {
				if want := tc.prefix + numberedLine(n+i); line != want {
					t.Fatalf("line %d kept is %q, want %q", i, line, want)
				}
			}
			if last := n + len(all) - 1; last != lines-1 {
				t.Errorf("last line kept is number %d, want %d", last, lines-1)
			}
		})
	}
}

func TestFileStreamLineBiggerThanMaxBytes(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("b", 30) + "\n"
	for _, tc := range []struct {
		name    string
		batches []string
	}{
		{"one batch", []string{"short\n" + big + "tail\n"}},
		{"one line a batch", []string{"short\n", big, "tail\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "out.log")
			s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path, MaxBytes: 10, BackupCount: 2})
			for _, b := range tc.batches {
				mustWrite(t, s, b, 1, noon)
			}
			for name, want := range map[string]string{path + ".2": "short\n", path + ".1": big, path: "tail\n"} {
				if got := readString(t, name); got != want {
					t.Errorf("%s holds %q, want %q", name, got, want)
				}
			}
		})
	}
}

func TestFileStreamBackupCountZeroTruncates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path, MaxBytes: 10})
	mustWrite(t, s, "aaaa\nbbbb\n", 1, noon)
	mustWrite(t, s, "cccc\n", 1, noon)
	if got, want := readString(t, path), "cccc\n"; got != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
	if got := fileNames(t, dir); !slices.Equal(got, []string{"out.log"}) {
		t.Errorf("files = %q, want only out.log", got)
	}
}

func TestFileStreamAppendsAndCountsExistingSize(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "out.log")
	if err := os.WriteFile(path, []byte("old1\nold2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path, MaxBytes: 12, BackupCount: 1})
	mustWrite(t, s, "new\n", 1, noon)
	if got, want := readString(t, path+".1"), "old1\nold2\n"; got != want {
		t.Errorf("%s.1 holds %q, want %q", path, got, want)
	}
	if got, want := readString(t, path), "new\n"; got != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func TestFilePrefix(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "out.log")
	s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path, TimeFormat: "%Y-%m-%d %H:%M:%S"})
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.Local)
	mustWrite(t, s, "hello\n", 42, at)
	mustWrite(t, s, "two\nlines\n", 7, at.Add(time.Second))
	mustWrite(t, s, "no newline", 42, at) // Circus ends each chunk with one
	want := "2026-11-23 10:00:00 [42] | hello\n" +
		"2026-11-23 10:00:01 [7] | two\n" +
		"2026-11-23 10:00:01 [7] | lines\n" +
		"2026-11-23 10:00:00 [42] | no newline\n"
	if diff := cmp.Diff(want, readString(t, path)); diff != "" {
		t.Errorf("file content (-want +got):\n%s", diff)
	}
}

func TestFileStreamFailedRotationKeepsLines(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "out.log")
	// A non-empty directory where path.1 should go makes the rename fail.
	if err := os.MkdirAll(filepath.Join(path+".1", "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path, MaxBytes: 10, BackupCount: 1})
	mustWrite(t, s, "aaaa\nbbbb\n", 1, noon)
	if err := s.write([]byte("cccc\ndddd\n"), 1, noon); err == nil {
		t.Errorf("write past max_bytes with %s.1 a directory = nil, want the rename's error", path)
	}
	if got, want := readString(t, path), "aaaa\nbbbb\ncccc\ndddd\n"; got != want {
		t.Errorf("%s holds %q, want %q", path, got, want)
	}
}

func TestTimedRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "out.log")
	t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The first period starts at the file's mtime.
	if err := os.Chtimes(path, t0, t0); err != nil {
		t.Fatal(err)
	}
	// Files that are not ours, or not of this unit, are never pruned.
	for _, name := range []string{"out.log.1", "out.log.2026112310", "other.log.20200101000000"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := openTestFile(t, config.Stream{Class: "TimedRotatingFileStream", Filename: path,
		RotateWhen: "S", RotateInterval: 1, BackupCount: 2, UTC: true})
	for _, w := range []struct {
		line string
		at   time.Duration
	}{
		{"a\n", 500 * time.Millisecond},
		{"b\n", time.Second}, // period [10:00:00, 10:00:01) ends
		{"c\n", 5 * time.Second},
		{"d\n", 6 * time.Second},
	} {
		mustWrite(t, s, w.line, 1, t0.Add(w.at))
	}
	want := map[string]string{
		"out.log":                  "d\n",
		"out.log.20261123100001":   "b\n",
		"out.log.20261123100005":   "c\n",
		"out.log.1":                "",
		"out.log.2026112310":       "",
		"other.log.20200101000000": "",
	}
	got := map[string]string{}
	for _, name := range fileNames(t, dir) {
		got[name] = readString(t, filepath.Join(dir, name))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestScheduleNext(t *testing.T) {
	t.Parallel()
	zone := time.FixedZone("EST", -5*3600)
	at := func(month time.Month, day, hour, minute, sec, nsec int) time.Time {
		return time.Date(2026, month, day, hour, minute, sec, nsec, zone)
	}
	// 2026-11-23 is a Monday.
	for _, tc := range []struct {
		name     string
		when     string
		interval int
		now      time.Time
		next     time.Time
		start    time.Time
	}{
		{"S counts whole seconds", "S", 1, at(11, 23, 10, 0, 0, 900e6), at(11, 23, 10, 0, 1, 0), at(11, 23, 10, 0, 0, 0)},
		{"M", "M", 5, at(11, 23, 10, 0, 7, 0), at(11, 23, 10, 5, 7, 0), at(11, 23, 10, 0, 7, 0)},
		{"H", "H", 2, at(11, 23, 10, 30, 0, 0), at(11, 23, 12, 30, 0, 0), at(11, 23, 10, 30, 0, 0)},
		{"D is not at midnight", "D", 1, at(11, 23, 10, 30, 0, 0), at(11, 24, 10, 30, 0, 0), at(11, 23, 10, 30, 0, 0)},
		{"MIDNIGHT", "MIDNIGHT", 1, at(11, 23, 10, 0, 0, 0), at(11, 24, 0, 0, 0, 0), at(11, 23, 0, 0, 0, 0)},
		{"MIDNIGHT at midnight", "MIDNIGHT", 1, at(11, 24, 0, 0, 0, 0), at(11, 25, 0, 0, 0, 0), at(11, 24, 0, 0, 0, 0)},
		{"MIDNIGHT every 2 days", "MIDNIGHT", 2, at(11, 23, 23, 59, 59, 0), at(11, 25, 0, 0, 0, 0), at(11, 23, 0, 0, 0, 0)},
		{"MIDNIGHT across the year", "MIDNIGHT", 1, at(12, 31, 18, 0, 0, 0), time.Date(2027, 1, 1, 0, 0, 0, 0, zone), at(12, 31, 0, 0, 0, 0)},
		// Python's Wd rolls over at the midnight that ends day d.
		{"W3 from a Monday ends on Thursday", "W3", 1, at(11, 23, 10, 0, 0, 0), at(11, 27, 0, 0, 0, 0), at(11, 20, 0, 0, 0, 0)},
		{"W3 on a Thursday ends tonight", "W3", 1, at(11, 26, 10, 0, 0, 0), at(11, 27, 0, 0, 0, 0), at(11, 20, 0, 0, 0, 0)},
		{"W3 from a Friday waits a week", "W3", 1, at(11, 27, 10, 0, 0, 0), at(12, 4, 0, 0, 0, 0), at(11, 27, 0, 0, 0, 0)},
		{"W0 from a Wednesday", "W0", 1, at(11, 18, 10, 0, 0, 0), at(11, 24, 0, 0, 0, 0), at(11, 17, 0, 0, 0, 0)},
		{"W6 every 2 weeks", "W6", 2, at(11, 23, 10, 0, 0, 0), at(12, 7, 0, 0, 0, 0), at(11, 23, 0, 0, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := newSchedule(tc.when, tc.interval, zone)
			if err != nil {
				t.Fatalf("newSchedule(%q) = %v", tc.when, err)
			}
			if got := s.next(tc.now); !got.Equal(tc.next) {
				t.Errorf("next(%v) = %v, want %v", tc.now, got.In(zone), tc.next)
			}
			if got := s.start(tc.next); !got.Equal(tc.start) {
				t.Errorf("start(%v) = %v, want %v", tc.next, got.In(zone), tc.start)
			}
		})
	}
	s, err := newSchedule("W3", 1, zone)
	if err != nil {
		t.Fatal(err)
	}
	for day := 23; day < 30; day++ {
		if last := s.next(at(11, day, 12, 0, 0, 0)).Add(-time.Second).In(zone); last.Weekday() != time.Thursday {
			t.Errorf("W3 from 2026-11-%d rotates after %v, not a Thursday", day, last)
		}
	}
}

func TestScheduleNextAcrossDST(t *testing.T) {
	t.Parallel()
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Skipf("no time zone database: %v", err)
	}
	s, err := newSchedule("MIDNIGHT", 1, paris)
	if err != nil {
		t.Fatal(err)
	}
	// Clocks go forward at 02:00 on 2026-03-29: that day has 23 hours.
	for _, tc := range []struct{ now, want time.Time }{
		{time.Date(2026, 3, 28, 10, 0, 0, 0, paris), time.Date(2026, 3, 29, 0, 0, 0, 0, paris)},
		{time.Date(2026, 3, 29, 1, 0, 0, 0, paris), time.Date(2026, 3, 30, 0, 0, 0, 0, paris)},
		{time.Date(2026, 3, 29, 10, 0, 0, 0, paris), time.Date(2026, 3, 30, 0, 0, 0, 0, paris)},
	} {
		if got := s.next(tc.now); !got.Equal(tc.want) {
			t.Errorf("next(%v) = %v, want %v", tc.now, got, tc.want)
		}
	}
}

func TestNewScheduleRefusesUnknownUnits(t *testing.T) {
	t.Parallel()
	for _, when := range []string{"", "W7", "W", "midnight", "X"} {
		if _, err := newSchedule(when, 1, time.UTC); err == nil {
			t.Errorf("newSchedule(%q) = nil error, want one", when)
		}
	}
}

func TestWatchedFileStream(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		move  func(path string) error
		moved string // where the old lines end up; "" when deleted
	}{
		{"renamed", func(path string) error { return os.Rename(path, path+".old") }, ".old"},
		{"deleted", os.Remove, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "out.log")
			s := openTestFile(t, config.Stream{Class: "WatchedFileStream", Filename: path})
			mustWrite(t, s, "before\n", 1, noon)
			if err := tc.move(path); err != nil {
				t.Fatal(err)
			}
			mustWrite(t, s, "after\n", 1, noon)
			mustWrite(t, s, "again\n", 1, noon)
			if got, want := readString(t, path), "after\nagain\n"; got != want {
				t.Errorf("%s holds %q, want %q", path, got, want)
			}
			if tc.moved != "" {
				if got, want := readString(t, path+tc.moved), "before\n"; got != want {
					t.Errorf("%s%s holds %q, want %q", path, tc.moved, got, want)
				}
			}
		})
	}
}

func TestReopenAfterMove(t *testing.T) {
	t.Parallel()
	for _, class := range []string{"FileStream", "WatchedFileStream", "TimedRotatingFileStream"} {
		t.Run(class, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "out.log")
			s := openTestFile(t, config.Stream{Class: class, Filename: path, RotateWhen: "D", RotateInterval: 1})
			at := time.Now()
			mustWrite(t, s, "before\n", 1, at)
			if err := os.Rename(path, path+".old"); err != nil {
				t.Fatal(err)
			}
			if err := s.reopen(); err != nil {
				t.Fatalf("reopen() = %v", err)
			}
			mustWrite(t, s, "after\n", 1, at)
			if got, want := readString(t, path), "after\n"; got != want {
				t.Errorf("%s holds %q, want %q", path, got, want)
			}
			if got, want := readString(t, path+".old"), "before\n"; got != want {
				t.Errorf("%s.old holds %q, want %q", path, got, want)
			}
		})
	}
}

func TestFileStreamToFIFO(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	// Without a reader, opening a FIFO to write without blocking fails.
	r, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path})
	const want = "through\nthe fifo\n"
	mustWrite(t, s, want, 1, noon)
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
		t.Errorf("read from the FIFO %q, %v; want %q", got, err, want)
	}
}

func TestFileTemporary(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	sk, path, err := openFile(config.Stream{Class: "FileStream"}, "a/b", "stderr")
	if err != nil {
		t.Fatalf("openFile with no filename = %v", err)
	}
	defer sk.close()
	if dir, base := filepath.Split(path); filepath.Clean(dir) != tmp ||
		!strings.HasPrefix(base, "ringmaster-a_b-stderr-") || !strings.HasSuffix(base, ".log") {
		t.Errorf("openFile with no filename wrote %q, want %s/ringmaster-a_b-stderr-*.log", path, tmp)
	}
	mustWrite(t, sk, "x\n", 1, noon)
	if err := os.Rename(path, path+".old"); err != nil {
		t.Fatal(err)
	}
	if err := sk.reopen(); err != nil {
		t.Fatalf("reopen() = %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("reopen did not open the temporary file's path again: %v", err)
	}
}

func TestFileWriteAfterClose(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "out.log")
	s := openTestFile(t, config.Stream{Class: "FileStream", Filename: path})
	if err := s.close(); err != nil {
		t.Fatalf("close() = %v", err)
	}
	if err := s.write([]byte("late\n"), 1, noon); !errors.Is(err, os.ErrClosed) {
		t.Errorf("write after close = %v, want %v", err, os.ErrClosed)
	}
}

func TestOpenFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		spec config.Stream
		want string
	}{
		{"missing directory", config.Stream{Class: "FileStream", Filename: filepath.Join(dir, "no", "out.log")}, filepath.Join(dir, "no", "out.log")},
		{"bad time format", config.Stream{Class: "FileStream", Filename: filepath.Join(dir, "x"), TimeFormat: "%Q"}, "time_format: %Q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := openFile(tc.spec, "web", "stdout"); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("openFile(%+v) = %v, want an error naming %q", tc.spec, err, tc.want)
			}
		})
	}
}

// benchBatch is 64 KiB of 100-byte lines, as a busy worker's pipe gives.
func benchBatch() []byte {
	line := append(bytes.Repeat([]byte("x"), 99), '\n')
	return bytes.Repeat(line, 64<<10/len(line))
}

func BenchmarkFileStreamWrite(b *testing.B) {
	benchmarkFileStream(b, "")
}

func BenchmarkFileStreamPrefix(b *testing.B) {
	benchmarkFileStream(b, "%Y-%m-%d %H:%M:%S")
}

func benchmarkFileStream(b *testing.B, timeFormat string) {
	s := openTestFile(b, config.Stream{Class: "FileStream", Filename: filepath.Join(b.TempDir(), "out.log"),
		MaxBytes: 64 << 20, BackupCount: 2, TimeFormat: timeFormat})
	batch := benchBatch()
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	at := time.Now()
	for b.Loop() {
		if err := s.write(batch, 4242, at); err != nil {
			b.Fatal(err)
		}
	}
}
