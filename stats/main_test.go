package stats

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"go.uber.org/goleak"
)

// helperEnv names the role the test binary plays when it is run as a child
// (os/exec's helper-process pattern).
const helperEnv = "STATS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		goleak.VerifyTestMain(m)
	case "alloc":
		// Hold 64 MiB, every page touched, until stdin closes.
		mem := make([]byte, 64<<20)
		for i := range mem {
			mem[i] = byte(i)
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(io.Discard, mem[len(mem)-1])
		os.Exit(0)
	default:
		fmt.Fprintln(os.Stderr, "unknown helper", os.Getenv(helperEnv))
		os.Exit(2)
	}
}

// child starts argv in its own process group and, when the test ends,
// kills the group and reaps the child.
func child(t *testing.T, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { kill(cmd) })
	return cmd
}

func kill(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}

// allocator starts the test binary as the "alloc" helper and waits until it
// holds its memory.
func allocator(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=alloc")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(); kill(cmd) })
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(out).ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		if s != "ready\n" {
			t.Fatalf("alloc helper said %q", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("alloc helper not ready after 30s")
	}
	return cmd
}

// waitFor polls cond until it holds, failing the test after d.
var waitFor = testproc.WaitFor
