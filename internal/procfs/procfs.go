// Package procfs reads the few /proc files the arbiter samples (a
// process's times, parent and sizes) with one reused buffer and no
// allocation per file beyond the path. The stats package builds Circus's
// process info on it; the arbiter's resource limits use it directly.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// ClockTicks is USER_HZ, the unit of /proc/PID/stat's times. Linux fixes it
// at 100 for user space on every architecture (sysconf(_SC_CLK_TCK)).
const ClockTicks = 100

// ErrNoProcess is returned when the process asked for does not exist (any
// more).
var ErrNoProcess = errors.New("no such process")

// Stat holds the fields of /proc/PID/stat the arbiter uses.
type Stat struct {
	Comm      string // changes on exec, so it tells a cached argv[0] is stale
	State     byte   // R, S, D, Z (zombie: exited, not yet reaped)...
	PPid      int
	Utime     uint64 // clock ticks
	Stime     uint64
	Cutime    uint64 // of reaped children
	Cstime    uint64
	Nice      int
	StartTime uint64 // clock ticks after boot
	RSS       uint64 // resident pages
}

// Reader reads /proc files into one buffer that it reuses. It is not safe
// for concurrent use. The zero value is ready.
type Reader struct {
	buf []byte
}

// Read returns the contents of name, valid until the next read. A missing
// file, or a process that is gone, is ErrNoProcess.
func (r *Reader) Read(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, ReadErr(name, err)
	}
	defer unix.Close(fd)
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Read(fd, r.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, ReadErr(name, err)
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}

// ReadErr maps a failed read of name: ENOENT and ESRCH, a process that is
// gone, become ErrNoProcess.
func ReadErr(name string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return ErrNoProcess
	}
	return fmt.Errorf("read %s: %w", name, err)
}

// Path is /proc/PID/FILE.
func Path(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}

// Stat reads /proc/PID/stat.
func (r *Reader) Stat(pid int) (Stat, error) {
	b, err := r.Read(Path(pid, "stat"))
	if err != nil {
		return Stat{}, err
	}
	return parseStat(pid, b)
}

// parseStat parses the contents b of /proc/PID/stat.
func parseStat(pid int, b []byte) (Stat, error) {
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	// f[0] is field 3 of proc(5), state; field k is f[k-3]. Split by
	// hand into an array: bytes.Fields would allocate a slice of all 50
	// fields on every read, which was most of what a scrape of 1000
	// workers allocated.
	var f [22][]byte
	n := 0
	for rest := b[i+1:]; n < len(f); n++ {
		rest = bytes.TrimLeft(rest, " \n")
		if len(rest) == 0 {
			break
		}
		j := bytes.IndexAny(rest, " \n")
		if j < 0 {
			j = len(rest)
		}
		f[n], rest = rest[:j], rest[j:]
	}
	if n < len(f) {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, n+2)
	}
	st := Stat{State: f[0][0]}
	if j := bytes.IndexByte(b, '('); j >= 0 && j < i {
		st.Comm = string(b[j+1 : i])
	}
	var errs [8]error
	st.PPid, errs[0] = strconv.Atoi(string(f[1]))
	st.Utime, errs[1] = strconv.ParseUint(string(f[11]), 10, 64)
	st.Stime, errs[2] = strconv.ParseUint(string(f[12]), 10, 64)
	st.Cutime, errs[3] = strconv.ParseUint(string(f[13]), 10, 64)
	st.Cstime, errs[4] = strconv.ParseUint(string(f[14]), 10, 64)
	st.Nice, errs[5] = strconv.Atoi(string(f[16]))
	st.StartTime, errs[6] = strconv.ParseUint(string(f[19]), 10, 64)
	st.RSS, errs[7] = strconv.ParseUint(string(f[21]), 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return Stat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// Statm reads the sizes in /proc/PID/statm, in pages.
func (r *Reader) Statm(pid int) (size, resident uint64, err error) {
	b, err := r.Read(Path(pid, "statm"))
	if err != nil {
		return 0, 0, err
	}
	f := bytes.Fields(b)
	if len(f) < 2 {
		return 0, 0, fmt.Errorf("parse /proc/%d/statm: %q", pid, b)
	}
	size, err1 := strconv.ParseUint(string(f[0]), 10, 64)
	resident, err2 := strconv.ParseUint(string(f[1]), 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/statm: %w", pid, err)
	}
	return size, resident, nil
}
