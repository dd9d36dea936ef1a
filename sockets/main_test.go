package sockets

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// helperEnv names the helper program the test binary plays when re-executed
// as a child (os/exec's TestMain helper pattern).
const helperEnv = "RINGMASTER_SOCKETS_TEST_HELPER"

// helpers are the child programs, each reading its socket from fd 3.
var helpers = map[string]func() error{
	// serve accepts on fd 3 and answers each connection with "pid N\n".
	"serve": func() error {
		l, err := net.FileListener(os.NewFile(3, "fd3"))
		if err != nil {
			return err
		}
		for {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			fmt.Fprintf(c, "pid %d\n", os.Getpid())
			c.Close()
		}
	},
	// udpecho answers each datagram on fd 3 with "pid N".
	"udpecho": func() error {
		pc, err := net.FilePacketConn(os.NewFile(3, "fd3"))
		if err != nil {
			return err
		}
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return err
			}
			if _, err := fmt.Fprintf(writerTo{pc, from}, "pid %d", os.Getpid()); err != nil {
				return err
			}
		}
	},
	// upgrade-old and upgrade-new are the two images of TestUpgradeExec.
	"upgrade-old": upgradeOld,
	"upgrade-new": upgradeNew,
	// describefds prints its open fds and LISTEN_* environment as JSON.
	"describefds": func() error {
		d, err := describeFDs()
		if err != nil {
			return err
		}
		return json.NewEncoder(os.Stdout).Encode(d)
	},
}

type writerTo struct {
	pc   net.PacketConn
	addr net.Addr
}

func (w writerTo) Write(b []byte) (int, error) { return w.pc.WriteTo(b, w.addr) }

// fdInfo describes one open fd of a child.
type fdInfo struct {
	FD       int
	Target   string // readlink of /proc/self/fd/N
	NonBlock bool
}

type fdReport struct {
	FDs []fdInfo
	Env map[string]string
}

// describeFDs lists /proc/self/fd with raw syscalls, so that listing opens
// nothing but the directory itself (which it leaves out).
func describeFDs() (fdReport, error) {
	r := fdReport{Env: map[string]string{}}
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "LISTEN_") {
			k, v, _ := strings.Cut(kv, "=")
			r.Env[k] = v
		}
	}
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return r, err
	}
	defer unix.Close(dfd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return r, err
		}
		if n <= 0 {
			break
		}
		_, _, names = syscall.ParseDirent(buf[:n], -1, names)
	}
	for _, name := range names {
		fd, err := strconv.Atoi(name)
		if err != nil || fd == dfd {
			continue
		}
		target, _ := os.Readlink("/proc/self/fd/" + name)
		flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
		r.FDs = append(r.FDs, fdInfo{FD: fd, Target: target, NonBlock: flags&unix.O_NONBLOCK != 0})
	}
	slices.SortFunc(r.FDs, func(a, b fdInfo) int { return a.FD - b.FD })
	return r, nil
}

func TestMain(m *testing.M) {
	if name := os.Getenv(helperEnv); name != "" {
		h, ok := helpers[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown helper %q\n", name)
			os.Exit(2)
		}
		if err := h(); err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", name, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	// As the arbiter does at start-up: fds this process inherited from its
	// own parent must not leak into the children under test.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "close_range: %v\n", err)
	}
	goleak.VerifyTestMain(m)
}

// helperCmd returns a command running helper with files as ExtraFiles.
func helperCmd(t *testing.T, helper string, files []*os.File, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"="+helper)
	cmd.Env = append(cmd.Env, env...)
	cmd.ExtraFiles = files
	cmd.Stderr = t.Output()
	return cmd
}

// startHelper starts helper in the background; t.Cleanup kills and reaps
// it, so no child outlives its test.
func startHelper(t *testing.T, helper string, files []*os.File, env ...string) *exec.Cmd {
	t.Helper()
	cmd := helperCmd(t, helper, files, env...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start helper %s: %v", helper, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// describeChild runs describefds with files as ExtraFiles and returns its
// report.
func describeChild(t *testing.T, files []*os.File, env ...string) fdReport {
	t.Helper()
	cmd := helperCmd(t, "describefds", files, env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("describefds: %v", err)
	}
	var r fdReport
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("describefds output %q: %v", out, err)
	}
	return r
}

// userFDs leaves out the fds the Go runtime (or the race detector) may open
// by itself in the child.
func userFDs(r fdReport) []fdInfo {
	var out []fdInfo
	for _, f := range r.FDs {
		switch {
		case f.Target == "anon_inode:[eventpoll]", f.Target == "anon_inode:[eventfd]", f.Target == "anon_inode:[pidfd]":
			continue
		case strings.HasPrefix(f.Target, "/sys/fs/cgroup/"):
			continue // the runtime watches its CPU limit for GOMAXPROCS
		}
		out = append(out, f)
	}
	return out
}

// askPid connects to addr over network and returns the "pid N" line the
// serve helper answers with.
func askPid(t *testing.T, network, addr string) string {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return strings.TrimSpace(line)
}

// mustBind binds spec and closes the socket when the test ends.
func mustBind(t *testing.T, spec Spec) *Socket {
	t.Helper()
	s, err := Bind(spec)
	if err != nil {
		t.Fatalf("Bind(%+v) = %v", spec, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustPrepare prepares socks for one spawn and closes the Handoff when the
// test ends.
func mustPrepare(t *testing.T, socks ...*Socket) *Handoff {
	t.Helper()
	h, err := Prepare(socks)
	if err != nil {
		t.Fatalf("Prepare = %v", err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// tcp4 returns a TCP spec on 127.0.0.1 with a kernel-chosen port.
func tcp4(name string) Spec {
	return Spec{Name: name, Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 64, Umask: -1}
}

// haveIPv6 reports whether the kernel can bind ::1.
func haveIPv6() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}) == nil
}
