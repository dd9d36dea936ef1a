package sockets

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// The upgrade test runs the test binary as "upgrade-old", which binds, is
// told to hand over and execs the test binary again, in place, as
// "upgrade-new", which adopts and answers. upgradeDirEnv names the test's
// directory, for the unix paths.
const upgradeDirEnv = "RINGMASTER_SOCKETS_TEST_DIR"

// upgradeDoc is the hand-over document of the test.
type upgradeDoc struct {
	handover.Header
	Listeners map[string]int
	Sockets   []State
}

// upgradeAddrs is what upgrade-old bound, for the test to connect to
// before the exec.
type upgradeAddrs struct {
	Pid       int
	Listeners map[string]string // key → address
	Sockets   map[string]string // name → address
}

// upgradeReport is what upgrade-new found.
type upgradeReport struct {
	Pid       int
	Listeners map[string]string // key → Addr of the inherited listener
	Sockets   map[string]string // name → Addr of the adopted socket
	// Received is what each connection made before the exec had sent,
	// read after it, by listener key or socket name; "udp": the datagram.
	Received map[string]string
	// UnixKept lists the unix paths that were still there in the new
	// image, before its Close.
	UnixKept []string
	// ReuseCopy is the address a reuseport copy of "reuse" bound.
	ReuseCopy string
}

// upgradeSpecs are the sockets upgrade-old binds in dir.
func upgradeSpecs(dir string) []Spec {
	udp := tcp4("udp")
	udp.Type, udp.Proto = "SOCK_DGRAM", "udp"
	reuse := tcp4("reuse")
	reuse.ReusePort = true
	specs := []Spec{tcp4("tcp4"), unixSpec("unix", filepath.Join(dir, "s.sock")), udp, reuse}
	if haveIPv6() {
		v6 := tcp4("tcp6")
		v6.Host, v6.Family = "::1", "AF_INET6"
		specs = append(specs, v6)
	}
	return specs
}

// upgradeListeners are the listeners upgrade-old makes with
// handover.Listen, by key: network and address.
func upgradeListeners(dir string) map[string][2]string {
	return map[string][2]string{
		"test tcp":  {"tcp", "127.0.0.1:0"},
		"test unix": {"unix", filepath.Join(dir, "l.sock")},
	}
}

// upgradeOld binds, prints where, waits for a line on stdin, hands over
// and execs upgrade-new.
func upgradeOld() error {
	dir := os.Getenv(upgradeDirEnv)
	addrs := upgradeAddrs{Pid: os.Getpid(), Listeners: map[string]string{}, Sockets: map[string]string{}}
	for key, l := range upgradeListeners(dir) {
		ln, err := handover.Listen(key, l[0], l[1])
		if err != nil {
			return err
		}
		addrs.Listeners[key] = ln.Addr().String()
	}
	socks, err := BindAll(upgradeSpecs(dir))
	if err != nil {
		return err
	}
	for _, s := range socks {
		addrs.Sockets[s.Name()] = s.Addr()
	}
	if err := json.NewEncoder(os.Stdout).Encode(addrs); err != nil {
		return err
	}
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return err
	}

	doc := upgradeDoc{Header: handover.Header{Format: handover.Format, Version: "old"}}
	if doc.Listeners, err = handover.Listeners(); err != nil {
		return err
	}
	for _, s := range socks {
		st, err := s.Handover()
		if err != nil {
			return err
		}
		doc.Sockets = append(doc.Sockets, st)
	}
	fd, err := handover.Write(doc)
	if err != nil {
		return err
	}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, helperEnv+"=") })
	env = append(env, helperEnv+"=upgrade-new", handover.EnvState+"="+strconv.Itoa(fd))
	return syscall.Exec(os.Args[0], os.Args, env)
}

// upgradeNew takes the listeners and adopts the sockets handed over,
// reads what was sent before the exec, answers it, and prints its report.
func upgradeNew() error {
	dir := os.Getenv(upgradeDirEnv)
	fd, ok, err := handover.FromEnv()
	if err != nil || !ok {
		return fmt.Errorf("no hand-over: %v", err)
	}
	var doc upgradeDoc
	if _, err := handover.Read(fd, &doc); err != nil {
		return err
	}
	unix.Close(fd)
	handover.Inherit(doc.Listeners)
	r := upgradeReport{Pid: os.Getpid(), Listeners: map[string]string{}, Sockets: map[string]string{}, Received: map[string]string{}}
	for key, l := range upgradeListeners(dir) {
		ln, err := handover.Listen(key, l[0], l[1])
		if err != nil {
			return err
		}
		defer ln.Close()
		r.Listeners[key] = ln.Addr().String()
		if r.Received[key], err = answer(ln); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	if u := handover.Unclaimed(); len(u) != 0 {
		return fmt.Errorf("unclaimed listeners %v", u)
	}
	for _, st := range doc.Sockets {
		s, err := Adopt(st)
		if err != nil {
			return err
		}
		defer s.Close()
		r.Sockets[s.Name()] = s.Addr()
		if err := r.use(s); err != nil {
			return fmt.Errorf("socket %q: %w", s.Name(), err)
		}
	}
	for _, p := range []string{filepath.Join(dir, "l.sock"), filepath.Join(dir, "s.sock")} {
		if _, err := os.Lstat(p); err == nil {
			r.UnixKept = append(r.UnixKept, p)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

// use does with s what a worker would: reads the datagram of a UDP
// socket, makes a reuseport copy, or accepts the connection waiting.
func (r *upgradeReport) use(s *Socket) error {
	switch {
	case s.typ == unix.SOCK_DGRAM:
		var got string
		var rerr error
		err := s.Control(func(fd int) {
			buf := make([]byte, 64)
			var n int
			n, _, rerr = unix.Recvfrom(fd, buf, 0) // non-blocking: it is there, or not
			got = strings.TrimSpace(string(buf[:max(n, 0)]))
		})
		r.Received[s.Name()] = got
		return errors.Join(err, rerr)
	case s.spec.ReusePort:
		h, err := Prepare([]*Socket{s})
		if err != nil {
			return err
		}
		defer h.Close()
		rc, err := h.own[0].SyscallConn()
		if err != nil {
			return err
		}
		var sa unix.Sockaddr
		if cerr := rc.Control(func(fd uintptr) { sa, err = unix.Getsockname(int(fd)) }); cerr != nil || err != nil {
			return errors.Join(cerr, err)
		}
		host, port := inetAddr(sa)
		r.ReuseCopy = net.JoinHostPort(host, strconv.Itoa(port))
		return nil
	}
	h, err := Prepare([]*Socket{s})
	if err != nil {
		return err
	}
	defer h.Close()
	ln, err := net.FileListener(h.Files[0])
	if err != nil {
		return err
	}
	defer ln.Close()
	r.Received[s.Name()], err = answer(ln)
	return err
}

// answer accepts one connection on ln, reads a line and answers it with
// this process's pid.
func answer(ln net.Listener) (string, error) {
	ln.(interface{ SetDeadline(time.Time) error }).SetDeadline(time.Now().Add(10 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", err
	}
	_, err = fmt.Fprintf(c, "pid %d\n", os.Getpid())
	return strings.TrimSpace(line), err
}

// The arbiter's listeners and bound sockets go across a real exec of the
// process in place: every connection made before the exec, left in a
// backlog and never accepted, is accepted after it (nothing refused), a
// datagram sent meanwhile is read, the unix socket files are not removed
// by the old image and are by the new one's Close, and every address is
// the same.
func TestUpgradeExec(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), helperEnv+"=upgrade-old", upgradeDirEnv+"="+dir)
	cmd.Stderr = t.Output()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	out := json.NewDecoder(stdout)
	var addrs upgradeAddrs
	if err := out.Decode(&addrs); err != nil {
		t.Fatalf("upgrade-old: %v", err)
	}
	early := dialEarly(t, addrs)
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	var r upgradeReport
	if err := out.Decode(&r); err != nil {
		t.Fatalf("upgrade-new: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("upgrade-new: %v", err)
	}

	if r.Pid != addrs.Pid || r.Pid != cmd.Process.Pid {
		t.Errorf("pids: old %d, new %d, want both %d", addrs.Pid, r.Pid, cmd.Process.Pid)
	}
	for key, a := range addrs.Listeners {
		if r.Listeners[key] != a {
			t.Errorf("listener %q: %s after the exec, want %s", key, r.Listeners[key], a)
		}
	}
	for name, a := range addrs.Sockets {
		if r.Sockets[name] != a {
			t.Errorf("socket %q: %s after the exec, want %s", name, r.Sockets[name], a)
		}
	}
	want := fmt.Sprintf("pid %d", cmd.Process.Pid)
	for name, c := range early {
		if got := r.Received[name]; got != "hello "+name {
			t.Errorf("%s: read %q after the exec, want %q", name, got, "hello "+name)
		}
		if name == "udp" {
			continue // a datagram gets no answer
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if strings.TrimSpace(line) != want {
			t.Errorf("%s: connection made before the exec read %q, %v, want %q", name, line, err, want)
		}
	}
	if r.ReuseCopy != addrs.Sockets["reuse"] {
		t.Errorf("reuseport copy bound %s, want %s", r.ReuseCopy, addrs.Sockets["reuse"])
	}
	kept := []string{filepath.Join(dir, "l.sock"), filepath.Join(dir, "s.sock")}
	if !slices.Equal(r.UnixKept, kept) {
		t.Errorf("unix paths there after the exec: %q, want %q", r.UnixKept, kept)
	}
	for _, p := range kept {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after the new image's Close, Lstat(%s) = %v, want it removed", p, err)
		}
	}
}

// dialEarly connects to every listener and stream socket of addrs and
// sends "hello NAME" on each, and a datagram "hello udp" to the UDP
// socket, before the exec: the connections wait in the backlogs. It
// returns the connections by listener key or socket name; "udp" is the
// UDP one, which gets no answer.
func dialEarly(t *testing.T, addrs upgradeAddrs) map[string]net.Conn {
	t.Helper()
	early := map[string]net.Conn{}
	dial := func(name, network, addr string) {
		c, err := net.DialTimeout(network, addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %s %s: %v", name, addr, err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := fmt.Fprintf(c, "hello %s\n", name); err != nil {
			t.Fatal(err)
		}
		early[name] = c
	}
	dial("test tcp", "tcp", addrs.Listeners["test tcp"])
	dial("test unix", "unix", addrs.Listeners["test unix"])
	for name, addr := range addrs.Sockets {
		switch name {
		case "unix":
			dial(name, "unix", addr)
		case "tcp4", "tcp6":
			dial(name, "tcp", addr)
		}
	}
	dial("udp", "udp", addrs.Sockets["udp"])
	return early
}
