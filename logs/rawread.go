package logs

import (
	"errors"
	"io"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// pipeReader reads a pipe's non-blocking read end (see Pipe) through Go's
// poller, as os.File.Read does, but makes the read(2) itself a raw system
// call.
//
// Why: a system call made the usual way tells the scheduler it is entered,
// and when every thread was idle that wakes the runtime's monitor thread
// (sysmon) from its deep sleep, and it then naps in steps of 20 µs before
// it finds everything idle again and sleeps. A worker's output arrives in
// small bursts, each waking the arbiter from idle: with ten workers writing
// every 10 ms, these wake-ups were a third of the arbiter's cpu. A read of
// a non-blocking pipe never blocks and copies at most the buffer, so
// nothing is lost by not telling the scheduler.
type pipeReader struct {
	rc syscall.RawConn
}

func newPipeReader(f *os.File) pipeReader {
	// SyscallConn fails only for a nil *os.File.
	rc, _ := f.SyscallConn()
	return pipeReader{rc: rc}
}

// Read reads into p, waiting while the pipe is empty. It returns io.EOF
// once every writer has closed the pipe, os.ErrClosed once the file is
// closed (Output.Close stops reading that way), and os.ErrDeadlineExceeded
// once a read deadline has passed (Output.Detach stops reading that way,
// leaving the pipe open).
func (r pipeReader) Read(p []byte) (int, error) {
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			m, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
			if e == unix.EINTR {
				continue
			}
			n, errno = int(m), e
			return e != unix.EAGAIN
		}
	})
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, err
	case err != nil:
		// The poller's only other failure here: the file was closed.
		return 0, os.ErrClosed
	case errno != 0:
		return 0, os.NewSyscallError("read", errno)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}
