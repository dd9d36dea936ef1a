package handover

import "golang.org/x/sys/unix"

// KeepFD clears fd's close-on-exec flag, so that fd, under the same
// number, is the new image's too.
func KeepFD(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	return err
}

// CloseOnExec sets fd's close-on-exec flag again, after an exec that
// failed: the fd must not leak into the workers spawned from now on.
func CloseOnExec(fd int) {
	_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
}
