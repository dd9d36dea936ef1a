package stats

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// reader adds to procfs.Reader the files only stats reads.
type reader struct {
	procfs.Reader
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = procfs.ClockTicks

// realUID reads the real uid from /proc/PID/status, as psutil's username
// does.
func (r *reader) realUID(pid int) (int, error) {
	b, err := r.Read(procfs.Path(pid, "status"))
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
	b, err := r.Read(procfs.Path(pid, "cmdline"))
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
	dir := procfs.Path(pid, "task")
	tids, err := readDirNames(dir)
	if err != nil {
		return nil, procfs.ReadErr(dir, err)
	}
	var kids []int
	for _, tid := range tids {
		b, err := r.Read(dir + "/" + tid + "/children")
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
	b, err := r.Read("/proc/meminfo")
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
	b, err := r.Read("/proc/stat")
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
