package sockets

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// defaultUmask applies when Spec.Umask is negative: only the arbiter's user
// may connect.
const defaultUmask = 0o077

// maxSunPath is the longest path bind() takes (sun_path less its NUL).
const maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1

// bindUnix binds a unix socket at spec.Path with the mode the spec's umask
// gives, without touching the process-wide umask (other goroutines create
// files meanwhile): the socket is bound under a temporary name in a private
// directory next to the path, chmod-ed, made to listen, and renamed into
// place, so the path never names a socket with the wrong mode or one that
// does not accept connections yet.
func (s *Socket) bindUnix() error {
	path := s.spec.Path
	fail := func(err error) error {
		return fmt.Errorf("bind socket %q %s: %w", s.spec.Name, path, err)
	}
	if path[0] == '@' { // Linux abstract namespace: no file, no mode
		fd, err := s.newSocket()
		if err != nil {
			return fail(err)
		}
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			unix.Close(fd)
			return fail(err)
		}
		if err := s.listen(fd); err != nil {
			unix.Close(fd)
			return fail(err)
		}
		s.file = s.newFile(fd)
		return nil
	}

	replace := false
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case err == nil && st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return fail(fmt.Errorf("%w and is not a socket; refusing to replace it", fs.ErrExist))
	case err == nil && !s.spec.Replace:
		return fail(fmt.Errorf("%w (set replace = true to remove a stale socket)", fs.ErrExist))
	case err == nil:
		replace = true
	case !errors.Is(err, unix.ENOENT):
		return fail(&os.PathError{Op: "lstat", Path: path, Err: err})
	}

	umask := s.spec.Umask
	if umask < 0 {
		umask = defaultUmask
	}
	mode := uint32(0o777 &^ (umask & 0o777))

	// MkdirTemp makes the directory 0700, so nobody can reach the socket
	// before it has its final mode.
	tmpdir, err := os.MkdirTemp(filepath.Dir(path), ".ringmaster-sock-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmpdir)
	tmp := filepath.Join(tmpdir, "s")
	bindPath := tmp
	if len(tmp) > maxSunPath {
		// Reach the directory through a short /proc path instead.
		dfd, err := unix.Open(tmpdir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail(&os.PathError{Op: "open", Path: tmpdir, Err: err})
		}
		defer unix.Close(dfd)
		bindPath = "/proc/self/fd/" + strconv.Itoa(dfd) + "/s"
	}

	fd, err := s.newSocket()
	if err != nil {
		return fail(err)
	}
	if err := s.placeUnix(fd, bindPath, tmp, path, mode, replace); err != nil {
		unix.Close(fd)
		return fail(err)
	}
	s.file = s.newFile(fd)
	return nil
}

// placeUnix binds fd at bindPath (which names tmp), sets its mode, listens
// and renames tmp to path, recording the inode so that Close can unlink it.
func (s *Socket) placeUnix(fd int, bindPath, tmp, path string, mode uint32, replace bool) error {
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: bindPath}); err != nil {
		return err
	}
	if err := unix.Chmod(tmp, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: tmp, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Lstat(tmp, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: tmp, Err: err}
	}
	if err := s.listen(fd); err != nil {
		return err
	}
	if replace {
		// An atomic replace: connecting clients never see the path missing.
		if err := unix.Rename(tmp, path); err != nil {
			return &os.PathError{Op: "rename", Path: path, Err: err}
		}
	} else if err := renameNoReplace(tmp, path); err != nil {
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("%w (set replace = true to remove a stale socket)", fs.ErrExist)
		}
		return &os.PathError{Op: "rename", Path: path, Err: err}
	}
	s.created, s.dev, s.ino = path, st.Dev, st.Ino
	return nil
}

// renameNoReplace renames oldpath to newpath unless newpath exists, falling
// back to link and unlink where the filesystem lacks RENAME_NOREPLACE.
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	if err := unix.Link(oldpath, newpath); err != nil {
		return err
	}
	return unix.Unlink(oldpath)
}
