package sockets

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func unixSpec(name, path string) Spec {
	return Spec{Name: name, Path: path, Type: "SOCK_STREAM", Backlog: 16, Umask: -1}
}

// staleSocket leaves a unix socket file at path that nobody listens on, as a
// crashed arbiter does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
}

func TestUnixMode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		umask int
		want  fs.FileMode
	}{
		{"default", -1, 0o700},
		{"022", 0o022, 0o755},
		{"000", 0, 0o777},
		{"027", 0o027, 0o750},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "web.sock")
			spec := unixSpec("web", path)
			spec.Umask = tt.umask
			s := mustBind(t, spec)
			if s.Addr() != path || s.Host() != "" || s.Port() != 0 {
				t.Errorf("Addr(), Host(), Port() = %q, %q, %d, want %q, \"\", 0", s.Addr(), s.Host(), s.Port(), path)
			}
			fi, err := os.Lstat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Type() != fs.ModeSocket || fi.Mode().Perm() != tt.want {
				t.Errorf("mode of %s = %v, want socket %v", path, fi.Mode(), tt.want)
			}
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("%s holds %v, want only web.sock (no temporary left)", dir, entries)
			}
			c, err := net.DialTimeout("unix", path, 5*time.Second)
			if err != nil {
				t.Fatalf("dial %s: %v", path, err)
			}
			c.Close()
		})
	}
}

func TestUnixServe(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "web.sock")
	s := mustBind(t, unixSpec("web", path))
	h := mustPrepare(t, s)
	cmd := startHelper(t, "serve", h.Files)
	if got, want := askPid(t, "unix", path), fmt.Sprintf("pid %d", cmd.Process.Pid); got != want {
		t.Errorf("answer on %s = %q, want %q", path, got, want)
	}
}

func TestUnixExisting(t *testing.T) {
	t.Parallel()
	t.Run("stale socket", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "web.sock")
		staleSocket(t, path)
		s, err := Bind(unixSpec("web", path))
		if err == nil {
			s.Close()
			t.Fatal("Bind over an existing socket without replace succeeded")
		}
		if !strings.Contains(err.Error(), "replace = true") || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrExist) {
			t.Errorf("Bind error = %q, want the path, fs.ErrExist and a hint at replace = true", err)
		}
		spec := unixSpec("web", path)
		spec.Replace = true
		mustBind(t, spec)
		c, err := net.DialTimeout("unix", path, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s after replace: %v", path, err)
		}
		c.Close()
	})
	t.Run("regular file", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "web.sock")
		if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
			t.Fatal(err)
		}
		spec := unixSpec("web", path)
		spec.Replace = true
		s, err := Bind(spec)
		if err == nil {
			s.Close()
			t.Fatal("Bind with replace over a regular file succeeded")
		}
		if !strings.Contains(err.Error(), "not a socket") {
			t.Errorf("Bind error = %q, want it to say the file is not a socket", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "precious" {
			t.Errorf("regular file after Bind = %q, %v, want it untouched", b, err)
		}
	})
}

func TestUnixClose(t *testing.T) {
	t.Parallel()
	t.Run("unlinks", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "web.sock")
		s, err := Bind(unixSpec("web", path))
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := s.Close(); err != nil {
				t.Errorf("Close() #%d = %v, want nil", i+1, err)
			}
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("lstat %s after Close = %v, want not exist", path, err)
		}
	})
	t.Run("not ours any more", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "web.sock")
		s, err := Bind(unixSpec("web", path))
		if err != nil {
			t.Fatal(err)
		}
		// Someone else now owns the path.
		os.Remove(path)
		staleSocket(t, path)
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
		if _, err := os.Lstat(path); err != nil {
			t.Errorf("lstat %s after Close = %v, want the other socket kept", path, err)
		}
	})
}

func TestUnixLongPath(t *testing.T) {
	t.Parallel()
	// A path bind() takes, in a directory too deep for the temporary name
	// next to it: Bind must reach the temporary through /proc/self/fd.
	dir := t.TempDir()
	dir = filepath.Join(dir, strings.Repeat("d", maxSunPath-len(dir)-len("/web.sock")-1))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "web.sock")
	if len(path) != maxSunPath {
		t.Fatalf("test path has %d bytes, want %d", len(path), maxSunPath)
	}
	s := mustBind(t, unixSpec("web", path))
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Perm() != 0o700 || fi.Mode().Type() != fs.ModeSocket {
		t.Fatalf("lstat %s = %v, %v, want a 0700 socket", path, fi, err)
	}
	c, err := net.DialTimeout("unix", path, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", path, err)
	}
	c.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("lstat %s after Close = %v, want not exist", path, err)
	}
}
