package stats

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"

	"golang.org/x/sys/unix"
)

// This file reads the few /proc files a sample needs, with one reused
// buffer and no allocation per file beyond the path.

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times. Linux fixes it
// at 100 for user space on every architecture (sysconf(_SC_CLK_TCK)).
const clockTicks = 100

// procStat holds the fields of /proc/PID/stat a sample uses.
type procStat struct {
	comm      string // changes on exec, so it tells a cached argv[0] is stale
	ppid      int
	utime     uint64 // clock ticks
	stime     uint64
	cutime    uint64 // of reaped children
	cstime    uint64
	nice      int
	starttime uint64 // clock ticks after boot
}

// reader reads /proc files into one buffer that it reuses. It is not safe
// for concurrent use.
type reader struct {
	buf []byte
}

// read returns the contents of name, valid until the next read. A missing
// file, or a process that is gone, is ErrNoProcess.
func (r *reader) read(name string) ([]byte, error) {
	fd, err := unix.Open(name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, procErr(name, err)
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
			return nil, procErr(name, err)
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
	}
}

func procErr(name string, err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return ErrNoProcess
	}
	return fmt.Errorf("read %s: %w", name, err)
}

func procPath(pid int, file string) string {
	return "/proc/" + strconv.Itoa(pid) + "/" + file
}

// stat reads /proc/PID/stat.
func (r *reader) stat(pid int) (procStat, error) {
	b, err := r.read(procPath(pid, "stat"))
	if err != nil {
		return procStat{}, err
	}
	// The command name, in parentheses, may hold spaces and parentheses:
	// the fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: no ')'", pid)
	}
	f := bytes.Fields(b[i+1:])
	// f[0] is field 3 of proc(5), state; field k is f[k-3].
	if len(f) < 20 {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var st procStat
	if j := bytes.IndexByte(b, '('); j >= 0 && j < i {
		st.comm = string(b[j+1 : i])
	}
	var errs [7]error
	st.ppid, errs[0] = strconv.Atoi(string(f[1]))
	st.utime, errs[1] = strconv.ParseUint(string(f[11]), 10, 64)
	st.stime, errs[2] = strconv.ParseUint(string(f[12]), 10, 64)
	st.cutime, errs[3] = strconv.ParseUint(string(f[13]), 10, 64)
	st.cstime, errs[4] = strconv.ParseUint(string(f[14]), 10, 64)
	st.nice, errs[5] = strconv.Atoi(string(f[16]))
	st.starttime, errs[6] = strconv.ParseUint(string(f[19]), 10, 64)
	if err := errors.Join(errs[:]...); err != nil {
		return procStat{}, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return st, nil
}

// statm reads the sizes in /proc/PID/statm, in pages.
func (r *reader) statm(pid int) (size, resident uint64, err error) {
	b, err := r.read(procPath(pid, "statm"))
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

// realUID reads the real uid from /proc/PID/status, as psutil's username
// does.
func (r *reader) realUID(pid int) (int, error) {
	b, err := r.read(procPath(pid, "status"))
	if err != nil {
		return 0, err
	}
	_, rest, ok := bytes.Cut(b, []byte("\nUid:"))
	if !ok {
		return 0, fmt.Errorf("parse /proc/%d/status: no Uid", pid)
	}
	f := bytes.Fields(rest)
	if len(f) == 0 {
		return 0, fmt.Errorf("parse /proc/%d/status: empty Uid", pid)
	}
	uid, err := strconv.Atoi(string(f[0]))
	if err != nil {
		return 0, fmt.Errorf("parse /proc/%d/status: %w", pid, err)
	}
	return uid, nil
}

// cmdline returns the basename of argv[0], as Circus shows it; "" when the
// argument list is empty (a zombie, a kernel thread). Like Circus (which
// shlex-splits argv[0]), a program that rewrote its argv[0] with spaces,
// "postgres: writer", shows the first word.
func (r *reader) cmdline(pid int) (string, error) {
	b, err := r.read(procPath(pid, "cmdline"))
	if err != nil {
		return "", err
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	f := bytes.Fields(b)
	if len(f) == 0 {
		return "", nil
	}
	return path.Base(string(f[0])), nil
}

// children lists the direct children of pid from
// /proc/PID/task/TID/children (one file per thread: a child belongs to the
// thread that forked it). This needs CONFIG_PROC_CHILDREN, which the
// arbiter's stop_children relies on too.
func (r *reader) children(pid int) ([]int, error) {
	dir := procPath(pid, "task")
	tids, err := readDirNames(dir)
	if err != nil {
		return nil, procErr(dir, err)
	}
	var kids []int
	for _, tid := range tids {
		b, err := r.read(dir + "/" + tid + "/children")
		if err != nil {
			continue // the thread exited
		}
		for _, f := range bytes.Fields(b) {
			if k, err := strconv.Atoi(string(f)); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids, nil
}

// memTotal reads MemTotal from /proc/meminfo, in bytes.
func (r *reader) memTotal() (uint64, error) {
	b, err := r.read("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	_, rest, ok := bytes.Cut(b, []byte("MemTotal:"))
	if !ok {
		return 0, errors.New("parse /proc/meminfo: no MemTotal")
	}
	f := bytes.Fields(rest)
	if len(f) < 1 {
		return 0, errors.New("parse /proc/meminfo: empty MemTotal")
	}
	kb, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/meminfo: %w", err)
	}
	return kb * 1024, nil
}

// bootTime reads btime from /proc/stat, in epoch seconds.
func (r *reader) bootTime() (float64, error) {
	b, err := r.read("/proc/stat")
	if err != nil {
		return 0, err
	}
	_, rest, ok := bytes.Cut(b, []byte("\nbtime "))
	if !ok {
		return 0, errors.New("parse /proc/stat: no btime")
	}
	f := bytes.Fields(rest)
	if len(f) < 1 {
		return 0, errors.New("parse /proc/stat: empty btime")
	}
	bt, err := strconv.ParseUint(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse /proc/stat: %w", err)
	}
	return float64(bt), nil
}

// readDirNames lists a directory with getdents, without sorting or
// stat-ing the entries.
func readDirNames(dir string) ([]string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var names []string
	buf := make([]byte, 4096)
	for {
		n, err := unix.ReadDirent(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
