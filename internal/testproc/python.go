package testproc

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// SystemPython is Debian's python3, the one python3-zmq is installed for
// (a python3 earlier on PATH, such as pyenv's, may lack it).
const SystemPython = "/usr/bin/python3"

// HavePyzmq reports whether SystemPython can import zmq; asked once.
var HavePyzmq = sync.OnceValue(func() bool {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return exec.CommandContext(ctx, SystemPython, "-c", "import zmq").Run() == nil
})

// NeedPyzmq skips a test that needs a libzmq peer when python3-zmq is
// missing, except with CI=true, where CI installs it and its absence is a
// failure, not a skip.
func NeedPyzmq(t testing.TB) {
	t.Helper()
	if HavePyzmq() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s cannot import zmq; install python3-zmq", SystemPython)
	}
	t.Skipf("%s cannot import zmq (python3-zmq not installed)", SystemPython)
}
