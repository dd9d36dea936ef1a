package access

import (
	"bufio"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

// The test binary doubles as a client run as another user: with
// ACCESS_TEST_DIAL="NETWORK ADDRESS" it connects, says "connected" on
// stdout, and holds the connection until its stdin closes.
func TestMain(m *testing.M) {
	if v := os.Getenv("ACCESS_TEST_DIAL"); v != "" {
		network, addr, _ := strings.Cut(v, " ")
		c, err := net.Dial(network, addr)
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Stdout.WriteString("connected\n")
		io.Copy(io.Discard, os.Stdin)
		c.Close()
		os.Exit(0)
	}
	code := m.Run()
	if copied.dir != "" {
		os.RemoveAll(copied.dir)
	}
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// dialAs connects to addr from a process running as uid and gid, and
// returns its pid once it is connected; the process ends with the test.
func dialAs(t *testing.T, uid, gid int, network, addr string) int {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root, yet this test runs as uid", os.Geteuid())
		}
		t.Skip("needs root to run a client as another user")
	}
	bin := publicCopy(t)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "ACCESS_TEST_DIAL="+network+" "+addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Stderr = os.Stderr
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
		stdin.Close()
		cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "connected\n" {
		t.Fatalf("client as uid %d: %q, %v", uid, line, err)
	}
	return cmd.Process.Pid
}

var copied struct {
	once sync.Once
	dir  string
	err  error
}

// publicCopy returns a copy of the test binary that other users may run
// (its own directory is private), made once per test run.
func publicCopy(t *testing.T) string {
	copied.once.Do(func() {
		dir, err := os.MkdirTemp("", "access-test-")
		if err == nil {
			err = os.Chmod(dir, 0o755)
		}
		var src []byte
		if err == nil {
			src, err = os.ReadFile(os.Args[0])
		}
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, "client"), src, 0o755)
		}
		copied.dir, copied.err = dir, err
	})
	if copied.err != nil {
		t.Fatal(copied.err)
	}
	return filepath.Join(copied.dir, "client")
}
