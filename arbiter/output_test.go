package arbiter_test

// Tests of worker output capture through a running arbiter: real workers
// (testworker's flood, tick and odd roles) writing through real pipes into
// real files, rotated by size and by time, followed after a move, changed
// while the workers run, and read back through Tail.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// floodLine is line i of testworker's flood role, size bytes with its
// newline: "%09d %08x <pad>\n", where pad is one letter repeated and %08x
// is its CRC-32.
func floodLine(i, size int) string {
	head := fmt.Sprintf("%09d ", i)
	pad := strings.Repeat(string(rune('a'+i%26)), max(size-len(head)-10, 1))
	return fmt.Sprintf("%s%08x %s\n", head, crc32.ChecksumIEEE([]byte(pad)), pad)
}

// parseFloodLine returns the number of a flood line of size bytes, or why
// it is not one whole.
func parseFloodLine(line []byte, size int) (int, error) {
	if len(line) != size || line[9] != ' ' || line[18] != ' ' {
		return 0, fmt.Errorf("%d bytes %.40q…, want a flood line of %d", len(line), line, size)
	}
	i, err := strconv.Atoi(string(line[:9]))
	if err != nil {
		return 0, fmt.Errorf("number %q: %w", line[:9], err)
	}
	sum, err := strconv.ParseUint(string(line[10:18]), 16, 32)
	if err != nil {
		return 0, fmt.Errorf("checksum %q: %w", line[10:18], err)
	}
	pad := line[19 : len(line)-1]
	if crc32.ChecksumIEEE(pad) != uint32(sum) || pad[0] != byte('a'+i%26) {
		return 0, fmt.Errorf("line %d is damaged: %.40q…", i, line)
	}
	return i, nil
}

// checkFlood reads files, oldest first, and checks that together they
// hold whole flood lines of size bytes, each with a correct checksum,
// numbered one after another: none lost, doubled or out of order. It
// returns the number of the first line and how many there are.
func checkFlood(t *testing.T, files []string, size int) (first, n int) {
	t.Helper()
	next := -1
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReaderSize(f, 1<<20)
		for k := 1; ; k++ {
			line, err := br.ReadSlice('\n')
			if errors.Is(err, io.EOF) {
				if len(line) > 0 {
					t.Errorf("%s ends in a line without newline: %.40q…", name, line)
				}
				break
			}
			if err != nil {
				f.Close()
				t.Fatalf("reading %s: %v", name, err)
			}
			i, err := parseFloodLine(line, size)
			if err != nil {
				f.Close()
				t.Fatalf("%s line %d: %v", name, k, err)
			}
			if next >= 0 && i != next {
				f.Close()
				t.Fatalf("%s line %d is flood line %d, want %d: lines lost, doubled or out of order", name, k, i, next)
			}
			if next < 0 {
				first = i
			}
			next = i + 1
			n++
		}
		f.Close()
	}
	return first, n
}

// endsWith reports whether the file at path ends with want. It is false
// while the file does not exist, as between a rename and a new open.
func endsWith(path, want string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < int64(len(want)) {
		return false
	}
	buf := make([]byte, len(want))
	if _, err := f.ReadAt(buf, fi.Size()-int64(len(want))); err != nil {
		return false
	}
	return string(buf) == want
}

// numbered returns the files of a FileStream at path oldest first:
// path.n … path.1, then path.
func numbered(path string, n int) []string {
	var files []string
	for i := n; i >= 1; i-- {
		files = append(files, path+"."+strconv.Itoa(i))
	}
	return append(files, path)
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// ticks returns the numbers of the "tick N" lines in the file at path, in
// order, leaving out a last line not yet ended (the file may still be
// written). A missing file has none.
func ticks(t *testing.T, path string) []int {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var ns []int
	for line := range strings.Lines(string(b)) {
		n, err := tickNumber(strings.TrimSuffix(line, "\n"))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		ns = append(ns, n)
	}
	return ns
}

// tickNumber returns N of a line "tick N".
func tickNumber(line string) (int, error) {
	s, ok := strings.CutPrefix(line, "tick ")
	if !ok {
		return 0, fmt.Errorf("line %q is not a tick", line)
	}
	return strconv.Atoi(s)
}

// checkContiguous checks that ns counts up by one from its first number,
// from want when want is not negative.
func checkContiguous(t *testing.T, what string, ns []int, want int) {
	t.Helper()
	if len(ns) == 0 {
		t.Errorf("%s: no ticks", what)
		return
	}
	if want >= 0 && ns[0] != want {
		t.Errorf("%s start at tick %d, want %d", what, ns[0], want)
	}
	for k := 1; k < len(ns); k++ {
		if ns[k] != ns[k-1]+1 {
			t.Errorf("%s: tick %d follows tick %d: lost or doubled (ticks %v…)", what, ns[k], ns[k-1], ns[max(k-3, 0):min(k+3, len(ns))])
			return
		}
	}
}

// onePid waits for the watcher to have one live worker and returns it.
func onePid(t *testing.T, r *running, name string) int {
	t.Helper()
	var pids []int
	waitFor(t, "one worker of "+name, 10*time.Second, func() bool {
		pids = r.pids(t, name)
		return len(pids) == 1
	})
	return pids[0]
}

// tickINI is a watcher "tick" writing a tick every interval into a
// FileStream at path, with more stdout_stream options in extra; its
// stderr is kept in memory only.
func tickINI(interval, path, extra string) string {
	return fmt.Sprintf(`
[watcher:tick]
cmd = WORKER tick %s
stdout_stream.class = FileStream
stdout_stream.filename = %s
stderr_stream.class = QueueStream
%s`, interval, path, extra)
}

// A flood of 100 MiB through a FileStream of 8 MiB files, 15 kept: every
// line arrives whole, once and in order, across files that never exceed
// max_bytes and are rotated only when the next line would not fit.
func TestFileStreamRotationUnderFlood(t *testing.T) {
	t.Parallel()
	const (
		total    = 104857600
		size     = 100
		maxBytes = 8388608
		backups  = 15
	)
	path := filepath.Join(t.TempDir(), "flood.log")
	start(t, fmt.Sprintf(`
[watcher:flood]
cmd = WORKER flood %d %d
stdout_stream.class = FileStream
stdout_stream.filename = %s
stdout_stream.max_bytes = %d
stdout_stream.backup_count = %d
`, total, size, path, maxBytes, backups))
	begin := time.Now()
	lines := (total + size - 1) / size
	perFile := maxBytes / size
	// The flood is over once its last line is in the current file: the
	// stream writes in order, and rotates only before a write.
	last := floodLine(lines-1, size)
	waitFor(t, "the last flood line in "+path, 2*time.Minute, func() bool { return endsWith(path, last) })
	took := time.Since(begin)
	t.Logf("%d MiB through the arbiter into rotated files in %s: %.0f MiB/s", total>>20, took.Round(time.Millisecond), float64(total>>20)/took.Seconds())

	old := (lines+perFile-1)/perFile - 1
	for i := 1; i <= backups+1; i++ {
		name := path + "." + strconv.Itoa(i)
		if got, want := exists(name), i <= old; got != want {
			t.Errorf("%s exists = %v, want %v: %d lines of %d bytes fill %d files of max_bytes %d", name, got, want, lines, size, old+1, maxBytes)
		}
	}
	files := numbered(path, old)
	for _, name := range files {
		if n := fileSize(t, name); n > maxBytes {
			t.Errorf("%s holds %d bytes, more than max_bytes %d", name, n, maxBytes)
		} else if name != path && n <= maxBytes-size {
			t.Errorf("%s holds %d bytes: rotated although another line of %d bytes fitted under max_bytes %d", name, n, size, maxBytes)
		}
	}
	if first, n := checkFlood(t, files, size); first != 0 || n != lines {
		t.Errorf("the files hold flood lines %d..%d, want 0..%d", first, first+n-1, lines-1)
	}
}

// With fewer files kept than the flood fills, the oldest are removed: the
// kept files hold the last lines written, whole and contiguous.
func TestFileStreamRotationPrunes(t *testing.T) {
	t.Parallel()
	const (
		total    = 20000000
		size     = 100
		maxBytes = 1 << 20
		backups  = 3
	)
	path := filepath.Join(t.TempDir(), "flood.log")
	start(t, fmt.Sprintf(`
[watcher:flood]
cmd = WORKER flood %d %d
stdout_stream.class = FileStream
stdout_stream.filename = %s
stdout_stream.max_bytes = %d
stdout_stream.backup_count = %d
`, total, size, path, maxBytes, backups))
	lines := total / size
	waitFor(t, "the last flood line in "+path, 2*time.Minute, func() bool { return endsWith(path, floodLine(lines-1, size)) })

	for i := 1; i <= backups+1; i++ {
		name := path + "." + strconv.Itoa(i)
		if got, want := exists(name), i <= backups; got != want {
			t.Errorf("%s exists = %v, want %v (backup_count %d)", name, got, want, backups)
		}
	}
	perFile := maxBytes / size
	inCurrent := lines % perFile
	if inCurrent == 0 {
		inCurrent = perFile
	}
	want := backups*perFile + inCurrent
	first, n := checkFlood(t, numbered(path, backups), size)
	if first+n != lines || n != want {
		t.Errorf("the kept files hold flood lines %d..%d, want the last %d: %d..%d", first, first+n-1, want, lines-want, lines-1)
	}
}

// A TimedRotatingFileStream rotating every second names the old files
// after their period, keeps backup_count of them, and loses no tick
// between the files it keeps.
func TestTimedRotatingFileStream(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tick.log")
	r := start(t, fmt.Sprintf(`
[watcher:tick]
cmd = WORKER tick 50ms
stdout_stream.class = TimedRotatingFileStream
stdout_stream.filename = %s
stdout_stream.rotate_when = S
stdout_stream.rotate_interval = 1
stdout_stream.backup_count = 2
stderr_stream.class = QueueStream
`, path))
	pid := onePid(t, r, "tick")
	dated := regexp.MustCompile(`^tick\.log\.(\d{14})$`)
	// The files rotated so far, by name: pruning removes the oldest, so
	// the count of rotations is what was ever seen.
	seen := map[string]bool{}
	rotated := func() []string {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			if e.Name() == "tick.log" {
				continue
			}
			m := dated.FindStringSubmatch(e.Name())
			if m == nil {
				t.Fatalf("unexpected file %s beside %s", e.Name(), path)
			}
			if _, err := time.ParseInLocation("20060102150405", m[1], time.Local); err != nil {
				t.Errorf("rotated file %s is not named after a time: %v", e.Name(), err)
			}
			names = append(names, e.Name())
			seen[e.Name()] = true
		}
		return names
	}
	waitFor(t, "3 rotations", 30*time.Second, func() bool {
		rotated()
		return len(seen) >= 3
	})
	r.stop()

	names := rotated() // sorted by name, which is oldest first
	if len(names) != 2 {
		t.Errorf("after %d rotations %d dated files remain (%v), want backup_count 2", len(seen), len(names), names)
	}
	var all []int
	for _, name := range names {
		all = append(all, ticks(t, filepath.Join(dir, name))...)
	}
	all = append(all, ticks(t, path)...)
	checkContiguous(t, fmt.Sprintf("ticks in %v + tick.log", names), all, -1)
	stdout := logs.Stdout
	tail, _ := r.Watcher("tick").Output().Tail(logs.Query{Pid: pid, Stream: &stdout, Lines: 1})
	if len(tail) != 1 || len(all) == 0 {
		t.Fatalf("last line kept %v, last tick in the files %v", tail, all)
	}
	if n, err := tickNumber(string(tail[0].Data)); err != nil || n != all[len(all)-1] {
		t.Errorf("the last tick read is %q, the last in the files tick %d: the end of the output is lost", tail[0].Data, all[len(all)-1])
	}
}

// A WatchedFileStream follows its file when logrotate moves it away (the
// lines before the move stay in the moved file, those after go to a new
// one, none lost) and when it is deleted and created again.
func TestWatchedFileStream(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tick.log")
	start(t, fmt.Sprintf(`
[watcher:tick]
cmd = WORKER tick 20ms
stdout_stream.class = WatchedFileStream
stdout_stream.filename = %s
stderr_stream.class = QueueStream
`, path))
	waitFor(t, "ticks in "+path, 10*time.Second, func() bool { return len(ticks(t, path)) >= 3 })

	moved := path + ".moved"
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	waitFor(t, path+" again, with new ticks", 10*time.Second, func() bool { return len(ticks(t, path)) >= 3 })
	before := ticks(t, moved) // complete: the stream wrote to path since
	checkContiguous(t, "ticks in the moved file, then the new one", append(before, ticks(t, path)...), 0)

	// Deleted, and created again as logrotate's create does. Lines written
	// into the deleted file after the last look at it are gone with it.
	seen := ticks(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err == nil {
		err = f.Close()
	} else if errors.Is(err, os.ErrExist) {
		err = nil // the stream created it first
	}
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, path+" recreated, with new ticks", 10*time.Second, func() bool { return len(ticks(t, path)) >= 3 })
	after := ticks(t, path)
	checkContiguous(t, "ticks in the recreated file", after, -1)
	if after[0] <= seen[len(seen)-1] {
		t.Errorf("the recreated file starts at tick %d, not after tick %d of the deleted one", after[0], seen[len(seen)-1])
	}
}

// Output that is hard to carry whole arrives as written: a line written in
// pieces, a 1 MiB line, every byte value, and a last line without newline,
// ended when the worker exits.
func TestOddOutputIntact(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "odd.log")
	r := start(t, fmt.Sprintf(`
[watcher:odd]
cmd = WORKER odd
stdout_stream.class = FileStream
stdout_stream.filename = %s
`, path))
	var bin []byte
	for i := range 256 {
		if i != '\n' {
			bin = append(bin, byte(i))
		}
	}
	body := "split\n" + strings.Repeat("m", 1<<20) + "\n" + string(bin) + "\n"
	waitFor(t, "the 1 MiB line and the binary line in "+path, 30*time.Second, func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() >= int64(len(body))
	})
	r.stop()
	want := body + "no newline\n"
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("%s holds %d bytes, want %d; first difference at byte %d: got %.40q, want %.40q",
			path, len(got), len(want), i, got[i:], want[i:])
	}
}

// time_format prefixes every line with the time and the worker's pid.
func TestFileStreamPrefix(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tick.log")
	r := start(t, tickINI("20ms", path, "stdout_stream.time_format = %Y-%m-%d %H:%M:%S\n"))
	pid := onePid(t, r, "tick")
	waitFor(t, "3 lines in "+path, 10*time.Second, func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Count(b, []byte{'\n'}) >= 3
	})
	r.stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[` + strconv.Itoa(pid) + `\] \| tick \d+$`)
	for line := range strings.Lines(string(b)) {
		if !re.MatchString(strings.TrimSuffix(line, "\n")) {
			t.Errorf("line %q does not match %s", line, re)
		}
	}
}

// stuckFIFO is a FIFO that the test opened for reading, never to read
// it: a stream can open it, and its writes block once it is full instead
// of failing with EPIPE.
type stuckFIFO struct {
	t      *testing.T
	path   string
	rfd    int
	wfd    int // the test's own writing end, never written
	closed bool
}

// newStuckFIFO makes a stuckFIFO in a temporary directory. Its ends are
// closed when the test ends, after the arbiter (started later) is stopped.
func newStuckFIFO(t *testing.T) *stuckFIFO {
	t.Helper()
	f := &stuckFIFO{t: t, path: filepath.Join(t.TempDir(), "fifo")}
	if err := unix.Mkfifo(f.path, 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if f.rfd, err = unix.Open(f.path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.closeReader)
	if f.wfd, err = unix.Open(f.path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(f.wfd) })
	return f
}

// full reports whether the FIFO is full: poll(2) reports a writing end
// writable while the FIFO has room.
func (f *stuckFIFO) full() bool {
	fds := []unix.PollFd{{Fd: int32(f.wfd), Events: unix.POLLOUT}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return n == 0
}

// queued returns the bytes in the FIFO.
func (f *stuckFIFO) queued() int {
	n, err := unix.IoctlGetInt(f.rfd, unix.TIOCINQ) // FIONREAD
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

// closeReader makes a write stuck on the FIFO fail with EPIPE.
func (f *stuckFIFO) closeReader() {
	if !f.closed {
		f.closed = true
		unix.Close(f.rfd)
	}
}

// waitStuck waits until the FIFO is full and out has read more flood lines
// of 100 bytes than it holds: the stream is then in the middle of a write
// that cannot finish.
func (f *stuckFIFO) waitStuck(out *logs.Output) {
	f.t.Helper()
	waitFor(f.t, "the stream stuck on a full FIFO", 30*time.Second, func() bool {
		_, seq := out.Tail(logs.Query{Lines: 1})
		return f.full() && int(seq)*100 > f.queued()
	})
}

// returnsWithin runs f and reports whether it returned within d. If not,
// it calls unblock and waits for f, so that nothing is left running.
func returnsWithin(t *testing.T, d time.Duration, f func(), unblock func()) bool {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
		return true
	case <-time.After(d):
	}
	unblock()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatalf("still blocked 60s after the FIFO's reader closed")
	}
	return false
}

// A worker blocked on a stream that takes nothing (a FIFO nobody reads)
// blocks only itself: another watcher's worker killed again and again is
// replaced each time, and the blocked worker is left alive.
func TestBackpressureDoesNotDelayOtherWatchers(t *testing.T) {
	t.Parallel()
	const floodLines = 1 << 20
	fifo := newStuckFIFO(t)
	r := start(t, fmt.Sprintf(`
[watcher:flood]
cmd = WORKER flood %d 100
stdout_stream.class = FileStream
stdout_stream.filename = %s

[watcher:other]
cmd = WORKER sleep
check_flapping = false
`, floodLines*100, fifo.path))
	flood := onePid(t, r, "flood")
	fifo.waitStuck(r.Watcher("flood").Output())
	_, seq := r.Watcher("flood").Output().Tail(logs.Query{Lines: 1})

	for k := range 5 {
		victim := onePid(t, r, "other")
		if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("kill %d: a new worker of other in place of %d", k+1, victim), 10*time.Second, func() bool {
			p := r.pids(t, "other")
			return len(p) == 1 && p[0] != victim
		})
	}
	if p := r.pids(t, "flood"); !slices.Equal(p, []int{flood}) || gone(flood) {
		t.Errorf("flood workers %v, want %d still alive (blocked, not killed)", p, flood)
	}
	if !fifo.full() {
		t.Errorf("the FIFO has room again: who read it?")
	}
	// What the pipes and the stream's reader hold (a few MiB at most) is
	// all that was read of the 100 MiB: the flood is held back, not
	// drained and dropped.
	if _, now := r.Watcher("flood").Output().Tail(logs.Query{Lines: 1}); now > floodLines/10 {
		t.Errorf("%d of the flood's %d lines were read while its stream was blocked", now, floodLines)
	} else {
		t.Logf("flood blocked after %d lines read from its pipe (%d when the FIFO filled)", now, seq)
	}

	// Shutdown finishes although the stream is still stuck: the FIFO's
	// reader stays open. (It once hung: Output.Close gave up on the
	// stuck write, then Dest.Close waited for the lock that write held.)
	if !returnsWithin(t, 30*time.Second, r.stop, fifo.closeReader) {
		t.Errorf("Run did not return within 30s of cancel while a stream was blocked on a full FIFO")
	}
}

// floodToFIFO starts a watcher "flood" of lines lines of 100 bytes into a
// FIFO nobody reads, and waits until its stream is stuck writing to it.
func floodToFIFO(t *testing.T, lines int) (r *running, closeReader func()) {
	t.Helper()
	fifo := newStuckFIFO(t)
	r = start(t, fmt.Sprintf(`
[watcher:flood]
cmd = WORKER flood %d 100
stdout_stream.class = FileStream
stdout_stream.filename = %s
`, lines*100, fifo.path))
	fifo.waitStuck(r.Watcher("flood").Output())
	return r, fifo.closeReader
}

// A watcher blocked on its stream can be pointed elsewhere with Set: Set
// returns, and the worker's output flows into the new file, whole and in
// order, to its end.
func TestBackpressureSetStreamAway(t *testing.T) {
	t.Parallel()
	const lines = 200000
	r, closeReader := floodToFIFO(t, lines)
	pid := onePid(t, r, "flood")
	path := filepath.Join(t.TempDir(), "flood.log")
	cfg, err := r.Watcher("flood").Config().With(map[string]string{"stdout_stream.filename": path})
	if err != nil {
		t.Fatal(err)
	}
	var setErr error
	set := func() { setErr = r.Set(context.Background(), "flood", cfg, []string{"stdout_stream.filename"}) }
	if !returnsWithin(t, 10*time.Second, set, closeReader) {
		// Closing the old stream must not wait for the write stuck in
		// it: that write is made to fail, and its lines go to the new one.
		t.Errorf("Set of stdout_stream.filename did not return within 10s while the old stream was blocked on a full FIFO")
	}
	if setErr != nil {
		t.Fatalf("Set: %v", setErr)
	}
	waitFor(t, "the last flood line in "+path, time.Minute, func() bool { return endsWith(path, floodLine(lines-1, 100)) })
	if first, n := checkFlood(t, []string{path}, 100); first+n != lines {
		t.Errorf("%s holds flood lines %d..%d, want them up to %d", path, first, first+n-1, lines-1)
	}
	if got := r.pids(t, "flood"); !slices.Equal(got, []int{pid}) {
		t.Errorf("workers after Set of the stream: %v, want %d untouched", got, pid)
	}
}

// A reload that points a blocked watcher's stream elsewhere returns, and
// leaves the arbiter answering.
func TestBackpressureReloadStreamAway(t *testing.T) {
	t.Parallel()
	const lines = 200000
	r, closeReader := floodToFIFO(t, lines)
	path := filepath.Join(t.TempDir(), "flood.log")
	cfg := loadINI(t, fmt.Sprintf(`
[watcher:flood]
cmd = WORKER flood %d 100
stdout_stream.class = FileStream
stdout_stream.filename = %s
`, lines*100, path))
	var reloadErr error
	reload := func() { reloadErr = r.Reload(context.Background(), cfg) }
	if !returnsWithin(t, 10*time.Second, reload, closeReader) {
		// As with Set, and on the Run goroutine: were it to wait, the
		// whole arbiter would stop answering until the write ended.
		t.Errorf("Reload moving stdout_stream.filename did not return within 10s while the old stream was blocked on a full FIFO")
	}
	if reloadErr != nil {
		t.Fatalf("Reload: %v", reloadErr)
	}
	waitFor(t, "flood lines in "+path, time.Minute, func() bool { return fileSize(t, path) > 0 })
}

// ReopenLogs returns although one stream is blocked on a FIFO, and says
// which stream it could not reopen.
func TestBackpressureReopenLogs(t *testing.T) {
	t.Parallel()
	r, closeReader := floodToFIFO(t, 200000)
	var err error
	if !returnsWithin(t, 10*time.Second, func() { err = r.ReopenLogs() }, closeReader) {
		t.Fatalf("ReopenLogs did not return within 10s while a stream was blocked on a full FIFO")
	}
	if err == nil || !strings.Contains(err.Error(), "fifo") || !strings.Contains(err.Error(), "not reopened") {
		t.Errorf("ReopenLogs: %v, want an error naming the stuck FIFO", err)
	}
}

// Set gives a running watcher a new stdout file: the worker stays, the
// ticks go on in the new file, the old one stops growing, none lost.
func TestSetOutputStreamLive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.log"), filepath.Join(dir, "new.log")
	r := start(t, tickINI("20ms", oldPath, ""))
	pid := onePid(t, r, "tick")
	waitFor(t, "ticks in "+oldPath, 10*time.Second, func() bool { return len(ticks(t, oldPath)) >= 3 })

	w := r.Watcher("tick")
	cfg, err := w.Config().With(map[string]string{"stdout_stream.filename": newPath, "stdout_stream.max_bytes": "1048576"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Set(context.Background(), "tick", cfg, []string{"stdout_stream.filename", "stdout_stream.max_bytes"}); err != nil {
		t.Fatalf("Set: %v", err)
	}
	// Once Set returns the old file is closed: whatever it holds now is
	// all it will hold.
	oldSize := fileSize(t, oldPath)
	waitFor(t, "ticks in "+newPath, 10*time.Second, func() bool { return len(ticks(t, newPath)) >= 3 })
	if got := r.pids(t, "tick"); !slices.Equal(got, []int{pid}) {
		t.Errorf("workers after Set of the stream: %v, want %d untouched", got, pid)
	}
	if n := fileSize(t, oldPath); n != oldSize {
		t.Errorf("%s grew from %d to %d bytes after Set moved the output away", oldPath, oldSize, n)
	}
	if got := w.Output().Dest(logs.Stdout).Spec().MaxBytes; got != 1048576 {
		t.Errorf("stdout max_bytes = %d after Set, want 1048576", got)
	}
	checkContiguous(t, "ticks in the old file, then the new one", append(ticks(t, oldPath), ticks(t, newPath)...), 0)
}

// A reload whose only change is a watcher's stdout file moves its output
// without replacing its worker.
func TestReloadStreamOnly(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	oldPath, newPath := filepath.Join(dir, "old.log"), filepath.Join(dir, "new.log")
	r := start(t, tickINI("20ms", oldPath, ""))
	pid := onePid(t, r, "tick")
	waitFor(t, "ticks in "+oldPath, 10*time.Second, func() bool { return len(ticks(t, oldPath)) >= 3 })

	if err := r.Reload(context.Background(), loadINI(t, tickINI("20ms", newPath, ""))); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	oldSize := fileSize(t, oldPath)
	waitFor(t, "ticks in "+newPath, 10*time.Second, func() bool { return len(ticks(t, newPath)) >= 3 })
	if got := r.pids(t, "tick"); !slices.Equal(got, []int{pid}) {
		t.Errorf("workers after a reload changing only the stream: %v, want %d untouched", got, pid)
	}
	if n := fileSize(t, oldPath); n != oldSize {
		t.Errorf("%s grew from %d to %d bytes after the reload moved the output away", oldPath, oldSize, n)
	}
	checkContiguous(t, "ticks in the old file, then the new one", append(ticks(t, oldPath), ticks(t, newPath)...), 0)
}

// ReopenLogs after logrotate moved a FileStream's file away: the ticks go
// on in a new file at the path, none lost.
func TestReopenLogs(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tick.log")
	r := start(t, tickINI("20ms", path, ""))
	waitFor(t, "ticks in "+path, 10*time.Second, func() bool { return len(ticks(t, path)) >= 3 })
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := r.ReopenLogs(); err != nil {
		t.Fatalf("ReopenLogs: %v", err)
	}
	movedSize := fileSize(t, path+".1")
	waitFor(t, "ticks in a new "+path, 10*time.Second, func() bool { return len(ticks(t, path)) >= 3 })
	if n := fileSize(t, path+".1"); n != movedSize {
		t.Errorf("the moved file grew from %d to %d bytes after ReopenLogs", movedSize, n)
	}
	checkContiguous(t, "ticks in the moved file, then the new one", append(ticks(t, path+".1"), ticks(t, path)...), 0)
}

// Tail gives a watcher's recent lines: the last few, those since a Seq,
// and those of a worker that was killed and replaced.
func TestTailThroughArbiter(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:tick]
cmd = WORKER tick 20ms
stdout_stream.class = QueueStream
stderr_stream.class = QueueStream
`)
	out := r.Watcher("tick").Output()
	pid := onePid(t, r, "tick")
	stdout := logs.Stdout
	tickOf := func(l logs.Line) int {
		t.Helper()
		n, err := tickNumber(string(l.Data))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}

	var last3 []logs.Line
	waitFor(t, "3 ticks kept", 10*time.Second, func() bool {
		last3, _ = out.Tail(logs.Query{Stream: &stdout, Lines: 3})
		return len(last3) == 3
	})
	for k, l := range last3 {
		if l.Pid != pid || l.Stream != logs.Stdout || k > 0 && (tickOf(l) != tickOf(last3[k-1])+1 || l.Seq <= last3[k-1].Seq) {
			t.Fatalf("Tail(Lines: 3) = %+v, want 3 consecutive ticks of pid %d in Seq order", last3, pid)
		}
	}
	var since []logs.Line
	waitFor(t, "the tick after the last 3", 10*time.Second, func() bool {
		since, _ = out.Tail(logs.Query{Since: last3[2].Seq, Stream: &stdout})
		return len(since) > 0
	})
	if got, want := tickOf(since[0]), tickOf(last3[2])+1; got != want || since[0].Seq <= last3[2].Seq {
		t.Errorf("Tail(Since: %d) starts with tick %d (Seq %d), want tick %d after Seq %d", last3[2].Seq, got, since[0].Seq, want, last3[2].Seq)
	}

	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a worker in place of the killed one", 10*time.Second, func() bool {
		p := r.pids(t, "tick")
		return len(p) == 1 && p[0] != pid
	})
	next := r.pids(t, "tick")[0]
	waitFor(t, "ticks of the new worker", 10*time.Second, func() bool {
		l, _ := out.Tail(logs.Query{Pid: next, Stream: &stdout})
		return len(l) > 0
	})
	if l, _ := out.Tail(logs.Query{Pid: pid, Stream: &stdout}); len(l) == 0 || tickOf(l[len(l)-1]) < tickOf(since[0]) {
		t.Errorf("the killed worker %d has %d lines kept, want its ticks up to at least %d", pid, len(l), tickOf(since[0]))
	}
	if l, _ := out.Tail(logs.Query{Pid: next, Stream: &stdout}); tickOf(l[0]) != 0 {
		t.Errorf("the new worker's first kept line is %q, want tick 0", l[0].Data)
	}
}

// A stream file that cannot be opened fails New, naming the key.
func TestStreamFileCannotOpen(t *testing.T) {
	t.Parallel()
	bad := filepath.Join(t.TempDir(), "missing", "tick.log")
	cfg := loadINI(t, tickINI("20ms", bad, ""))
	a, err := arbiter.New(cfg, arbiter.Options{})
	if err == nil {
		t.Fatalf("New with stdout_stream.filename %s = %v, want an error", bad, a)
	}
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "stdout_stream.filename" || !strings.Contains(err.Error(), "stdout_stream.filename") {
		t.Errorf("New = %v, want a *config.Error naming stdout_stream.filename", err)
	}
}

// A reload to a stream file that cannot be opened fails, naming the key,
// and leaves the watcher running and writing where it did.
func TestReloadStreamFileCannotOpen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path, bad := filepath.Join(dir, "tick.log"), filepath.Join(dir, "missing", "tick.log")
	r := start(t, tickINI("20ms", path, ""))
	pid := onePid(t, r, "tick")
	waitFor(t, "ticks in "+path, 10*time.Second, func() bool { return len(ticks(t, path)) >= 3 })

	err := r.Reload(context.Background(), loadINI(t, tickINI("20ms", bad, "")))
	var ce *config.Error
	if !errors.As(err, &ce) || ce.Key != "stdout_stream.filename" {
		t.Errorf("Reload with stdout_stream.filename %s = %v, want a *config.Error naming stdout_stream.filename", bad, err)
	}
	n := len(ticks(t, path))
	waitFor(t, "more ticks in "+path+" after the failed reload", 10*time.Second, func() bool { return len(ticks(t, path)) >= n+3 })
	if got := r.pids(t, "tick"); !slices.Equal(got, []int{pid}) {
		t.Errorf("workers after a failed reload: %v, want %d untouched", got, pid)
	}
	checkContiguous(t, "ticks in "+path, ticks(t, path), 0)
}
