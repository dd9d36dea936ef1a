package logs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/strftime"
)

// fileFlags open a log file for appending. O_NONBLOCK matters only when
// the file is a FIFO: Go then writes it through its poller, and a reader
// that stops reading parks a goroutine instead of an OS thread. It has no
// effect on regular files.
const fileFlags = os.O_WRONLY | os.O_APPEND | os.O_CREATE | syscall.O_CLOEXEC | syscall.O_NONBLOCK

// maxKeptBuf is the largest prefixed-output buffer kept between writes;
// one odd huge batch should not pin its memory for the life of the
// watcher.
const maxKeptBuf = 1 << 20

// flushAt is the size at which prefixed output is written out before the
// rest of its batch is prefixed.
const flushAt = 256 << 10

// fileSink is Circus's FileStream, WatchedFileStream or
// TimedRotatingFileStream, after circus/stream/file_stream.py. Like every
// sink its calls are serialized by the caller.
type fileSink struct {
	// Set by openFile.
	path     string
	watched  bool             // WatchedFileStream: follow an external logrotate
	maxBytes int64            // FileStream: rotate by size; 0 never does
	backups  int              // rotated files kept; for timed rotation 0 keeps all
	tf       *strftime.Format // nil: lines are written as they are
	sched    *schedule        // TimedRotatingFileStream only

	f *os.File // nil once closed
	// live is f for abort, which runs beside a write stuck in f.
	live       atomic.Pointer[os.File]
	size       int64  // bytes in f: its size at open plus what was written since
	dev, ino   uint64 // identity of f, for WatchedFileStream
	rolloverAt time.Time
	head       []byte // "<time> [<pid>] | " of the batch being written
	buf        []byte // the batch with its prefixes, reused
}

// openFile opens the file of a FileStream, WatchedFileStream or
// TimedRotatingFileStream for stream ("stdout" or "stderr") of watcher
// name. It returns the sink and the path it writes: spec.Filename, or a new
// temporary file when that is empty, as in Circus. Errors carry the path.
func openFile(spec config.Stream, name, stream string) (sink, string, error) {
	s := &fileSink{path: spec.Filename, backups: max(spec.BackupCount, 0)}
	switch spec.Class {
	case "FileStream":
		s.maxBytes = spec.MaxBytes
	case "WatchedFileStream":
		s.watched = true
	case "TimedRotatingFileStream":
		// Circus's TimedRotatingFileStream takes max_bytes from FileStream
		// but never looks at it: it rotates by time only.
		loc := time.Local
		if spec.UTC {
			loc = time.UTC
		}
		sched, err := newSchedule(spec.RotateWhen, spec.RotateInterval, loc)
		if err != nil {
			return nil, "", err
		}
		s.sched = sched
	default:
		return nil, "", fmt.Errorf("stream class %q is not a file", spec.Class)
	}
	if spec.TimeFormat != "" {
		tf, err := strftime.Compile(spec.TimeFormat)
		if err != nil {
			return nil, "", fmt.Errorf("time_format: %w", err)
		}
		s.tf = tf
	}
	if s.path == "" {
		// The name only helps a human find the file; a '/' in it would
		// make CreateTemp refuse the pattern.
		pattern := "ringmaster-" + strings.ReplaceAll(name, string(os.PathSeparator), "_") + "-" + stream + "-*.log"
		tmp, err := os.CreateTemp("", pattern)
		if err != nil {
			return nil, "", err
		}
		s.path = tmp.Name()
		if err := tmp.Close(); err != nil {
			return nil, "", err
		}
	}
	f, fi, err := s.openPath()
	if err != nil {
		return nil, "", err
	}
	s.install(f, fi)
	if s.sched != nil {
		// As Circus, the first period runs from the file's last change,
		// so that a restart does not give an old file a fresh period. A
		// file just created has been changed now.
		s.rolloverAt = s.sched.next(fi.ModTime())
	}
	return s, s.path, nil
}

// openPath opens the file at the sink's path, creating it if needed.
func (s *fileSink) openPath() (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(s.path, fileFlags, 0o644)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// install makes f, described by fi, the file written, and closes the one
// it replaces.
func (s *fileSink) install(f *os.File, fi fs.FileInfo) error {
	old := s.f
	s.f, s.size = f, fi.Size()
	s.live.Store(f)
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s.dev, s.ino = uint64(st.Dev), st.Ino
	}
	if old != nil {
		return old.Close()
	}
	return nil
}

func (s *fileSink) write(lines []byte, pid int, t time.Time) error {
	if s.f == nil {
		return &os.PathError{Op: "write", Path: s.path, Err: os.ErrClosed}
	}
	var err error
	switch {
	case s.watched:
		err = s.follow()
	case s.sched != nil && !t.Before(s.rolloverAt):
		err = s.rollover(t)
	}
	var head []byte
	if s.tf != nil {
		// Circus stamps local time, whatever utc says about rotation.
		head = s.tf.Append(s.head[:0], t.Local())
		head = append(head, " ["...)
		head = strconv.AppendInt(head, int64(pid), 10)
		head = append(head, "] | "...)
		s.head = head
	}
	if head == nil && s.maxBytes <= 0 {
		return errors.Join(err, s.put(lines))
	}
	return errors.Join(err, s.writeLines(lines, head))
}

// writeLines writes lines, each preceded by head when it is not nil, and
// rotates by size between two lines when the next one would take the file
// past maxBytes. Each run of lines between two rotations takes one
// write(2).
func (s *fileSink) writeLines(lines, head []byte) error {
	var rotErr error
	out := s.buf[:0]
	start := 0          // first byte of lines not yet written (without head)
	pending := int64(0) // bytes to be written before the next rotation
	for i := 0; i < len(lines); {
		end := len(lines)
		if j := bytes.IndexByte(lines[i:], '\n'); j >= 0 {
			end = i + j + 1
		}
		n := int64(end - i + len(head))
		open := lines[end-1] != '\n' && head != nil
		if open {
			n++ // Circus ends every prefixed chunk with a newline
		}
		// A line larger than maxBytes goes alone into a file of its own.
		// After a failed rotation the rest of the batch stays in the
		// current file: the next write tries again.
		if s.maxBytes > 0 && rotErr == nil && s.size+pending > 0 && s.size+pending+n > s.maxBytes {
			if err := s.flush(lines[start:i], out, head != nil); err != nil {
				return err
			}
			out, start, pending = out[:0], i, 0
			rotErr = s.rotateBySize()
		}
		if head != nil {
			out = append(out, head...)
			out = append(out, lines[i:end]...)
			if open {
				out = append(out, '\n')
			}
		}
		pending += n
		i = end
		if len(out) >= flushAt {
			// Written in pieces of whole lines, so that the buffer
			// stays small however large the batch.
			if err := s.flush(lines[start:i], out, true); err != nil {
				return errors.Join(rotErr, err)
			}
			out, start, pending = out[:0], i, 0
		}
	}
	err := s.flush(lines[start:], out, head != nil)
	if cap(out) <= maxKeptBuf {
		s.buf = out[:0]
	} else {
		s.buf = nil
	}
	return errors.Join(rotErr, err)
}

// flush writes out, the prefixed lines, when prefixed, else raw.
func (s *fileSink) flush(raw, out []byte, prefixed bool) error {
	if prefixed {
		return s.put(out)
	}
	return s.put(raw)
}

// put writes p and counts it.
func (s *fileSink) put(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	return err
}

// rotateBySize shifts path.1 … path.N-1 to path.2 … path.N, path to
// path.1, and opens a new file at path. When it fails it leaves the
// current file open, so that no line is lost.
func (s *fileSink) rotateBySize() error {
	if s.backups == 0 {
		// Circus reopens the same file and lets it grow past max_bytes
		// (rotating again before every later write); keeping zero old
		// files, as the user asked, means starting the file over.
		if err := s.f.Truncate(0); err != nil {
			return fmt.Errorf("rotate %s: %w", s.path, err)
		}
		s.size = 0
		return nil
	}
	// rename(2) replaces a file in the way, so nothing is removed first.
	for i := s.backups - 1; i >= 1; i-- {
		err := os.Rename(s.numbered(i), s.numbered(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("rotate %s: %w", s.path, err)
		}
	}
	// A file deleted behind our back has nothing to keep.
	if err := os.Rename(s.path, s.numbered(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	f, fi, err := s.openPath()
	if err != nil {
		// The open file, now path.1, takes the lines until next time.
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	return s.install(f, fi)
}

func (s *fileSink) numbered(i int) string { return s.path + "." + strconv.Itoa(i) }

// rollover ends the period that ended at rolloverAt, at t: it renames the
// file after the period's start, removes the oldest such files beyond
// backups, and opens a new file. The next period starts at t even when
// this fails, so that a failing rename is reported once a period rather
// than at every write; the lines then stay in the current file.
func (s *fileSink) rollover(t time.Time) error {
	from := s.sched.start(s.rolloverAt)
	s.rolloverAt = s.sched.next(t)
	// rename(2) replaces a file already at dst, as Circus removes it.
	dst := s.path + "." + string(s.sched.suffix.Append(nil, from))
	if err := os.Rename(s.path, dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	f, fi, err := s.openPath()
	if err != nil {
		return errors.Join(fmt.Errorf("rotate %s: %w", s.path, err), s.prune())
	}
	return errors.Join(s.install(f, fi), s.prune())
}

// prune removes the oldest files rotated by time beyond backups; 0
// keeps them all.
func (s *fileSink) prune() error {
	if s.backups == 0 {
		return nil
	}
	dir, base := filepath.Split(s.path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("rotate %s: %w", s.path, err)
	}
	// ReadDir sorts by name, and names that differ only by a timestamp of
	// fixed width sort oldest first.
	var rotated []string
	for _, e := range entries {
		if suffix, ok := strings.CutPrefix(e.Name(), base+"."); ok && s.sched.matches(suffix) {
			rotated = append(rotated, e.Name())
		}
	}
	var errs []error
	for _, name := range rotated[:max(len(rotated)-s.backups, 0)] {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// follow reopens a WatchedFileStream's path when the file there is gone or
// is no longer the one open, as after logrotate's mv.
func (s *fileSink) follow() error {
	var st unix.Stat_t
	err := unix.Stat(s.path, &st)
	if err == nil && uint64(st.Dev) == s.dev && st.Ino == s.ino {
		return nil
	}
	if err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "stat", Path: s.path, Err: err}
	}
	return s.reopen()
}

// reopen opens the path again and closes the file it replaces. If the
// open fails the old file stays open, so that the lines still go
// somewhere; timed rotation keeps its schedule.
func (s *fileSink) reopen() error {
	if s.f == nil {
		return &os.PathError{Op: "reopen", Path: s.path, Err: os.ErrClosed}
	}
	f, fi, err := s.openPath()
	if err != nil {
		return err
	}
	return s.install(f, fi)
}

func (s *fileSink) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	s.live.Store(nil)
	if errors.Is(err, os.ErrClosed) {
		return nil // by abort
	}
	return err
}

// abort closes the file under a write that cannot finish (a FIFO that
// nobody reads): the write then fails at once.
func (s *fileSink) abort() {
	if f := s.live.Load(); f != nil {
		f.Close()
	}
}

// schedule is when a TimedRotatingFileStream rotates: Python's
// TimedRotatingFileHandler, which Circus copies, with three departures.
// Midnights are computed on the calendar of loc, where those add seconds
// and then patch the result by an hour when daylight saving time changed
// in between, so a period always ends at a real local midnight. Wd
// rotates at the midnight that ends the next day d, as Python does;
// Circus's copy waits a negative number of days from a later weekday and
// rotates at once. And rotate_interval counts days or weeks for MIDNIGHT
// and Wd, as since Python 3.13; Circus rotates every day or week whatever
// it says, and so misnames the rotated file.
type schedule struct {
	when    string        // S, M, H, D, MIDNIGHT or W
	every   time.Duration // S, M, H, D: the period
	n       int           // MIDNIGHT, W: days or weeks per period
	weekday int           // W: the day (0 is Monday) at whose end rotation happens
	loc     *time.Location
	suffix  *strftime.Format // names the rotated file after its period's start
	digits  int              // length of the suffix
}

// newSchedule returns the schedule of rotate_when when, every interval
// units (less than 1 counts as 1), in loc.
func newSchedule(when string, interval int, loc *time.Location) (*schedule, error) {
	s := &schedule{when: when, n: max(interval, 1), loc: loc}
	var unit time.Duration
	suffix := "%Y%m%d"
	switch {
	case when == "S":
		unit, suffix = time.Second, "%Y%m%d%H%M%S"
	case when == "M":
		unit, suffix = time.Minute, "%Y%m%d%H%M"
	case when == "H":
		unit, suffix = time.Hour, "%Y%m%d%H"
	case when == "D":
		unit = 24 * time.Hour
	case when == "MIDNIGHT":
	case len(when) == 2 && when[0] == 'W' && when[1] >= '0' && when[1] <= '6':
		s.when, s.weekday = "W", int(when[1]-'0')
	default:
		return nil, fmt.Errorf("rotate_when: unknown unit %q", when)
	}
	s.every = unit * time.Duration(s.n)
	tf, err := strftime.Compile(suffix)
	if err != nil {
		panic("BUG: " + err.Error())
	}
	s.suffix = tf
	s.digits = len(tf.Append(nil, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)))
	return s, nil
}

// next returns the end of the period that starts at now: now plus the
// period for S, M, H and D; for MIDNIGHT the n-th midnight after now; for
// Wd the midnight that ends the next day d (today's when today is d),
// plus n-1 weeks. Like Python, it counts from the whole second.
func (s *schedule) next(now time.Time) time.Time {
	now = now.Truncate(time.Second)
	if s.every > 0 {
		return now.Add(s.every)
	}
	y, m, d := now.In(s.loc).Date()
	days := s.n
	if s.when == "W" {
		today := (int(now.In(s.loc).Weekday()) + 6) % 7 // 0 is Monday
		days = 1 + (s.weekday-today+7)%7 + 7*(s.n-1)
	}
	return time.Date(y, m, d+days, 0, 0, 0, 0, s.loc)
}

// start returns the start of the period that ends at end, after which
// the rotated file is named.
func (s *schedule) start(end time.Time) time.Time {
	if s.every > 0 {
		return end.Add(-s.every).In(s.loc)
	}
	days := s.n
	if s.when == "W" {
		days *= 7
	}
	y, m, d := end.In(s.loc).Date()
	return time.Date(y, m, d-days, 0, 0, 0, 0, s.loc)
}

// matches reports whether suffix is one this schedule gives rotated
// files: all digits, of the suffix's length.
func (s *schedule) matches(suffix string) bool {
	if len(suffix) != s.digits {
		return false
	}
	for i := 0; i < len(suffix); i++ {
		if suffix[i] < '0' || suffix[i] > '9' {
			return false
		}
	}
	return true
}
