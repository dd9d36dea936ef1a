// Package testproc is shared test machinery: it builds testworker, a small
// program that plays the worker roles tests need (serve on an inherited
// socket, exit at once, ignore SIGTERM with a grandchild, describe its own
// process state), so tests run real processes rather than mocks.
//
// testworker is built without -race on purpose: a race-instrumented binary
// takes about a second to start here, which would dominate every respawn.
package testproc

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// Build compiles testworker into dir and returns its path. Call it from
// TestMain, before any Arbiter runs: an arbiter reaps every child of the
// process, including the go command's.
func Build(dir string) (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", fmt.Errorf("testproc: cannot locate own source")
	}
	out := filepath.Join(dir, "testworker")
	cmd := exec.Command("go", "build", "-o", out, "./testworker")
	cmd.Dir = filepath.Dir(file)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("testproc: go build testworker: %w\n%s", err, b)
	}
	return out, nil
}

// State is what testworker's describe role reports about itself.
type State struct {
	Pid       int               `json:"pid"`
	UID       int               `json:"uid"`
	GID       int               `json:"gid"`
	Groups    []int             `json:"groups"`
	Umask     int               `json:"umask"`
	Nice      int               `json:"nice"`
	NoFile    [2]uint64         `json:"nofile"`
	Core      [2]uint64         `json:"core"`
	Cwd       string            `json:"cwd"`
	Env       map[string]string `json:"env"`
	Fds       []int             `json:"fds"`
	Pgid      int               `json:"pgid"`
	NonBlock3 bool              `json:"nonblock3"`
	// NonBlock1 and NonBlock2 report stdout and stderr non-blocking: a
	// worker must get blocking ones, or it fails with EAGAIN on a full pipe.
	NonBlock1 bool `json:"nonblock1"`
	NonBlock2 bool `json:"nonblock2"`
}

// ReadState reads a describe report; ok is false until it is complete.
func ReadState(path string) (st State, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return st, false
	}
	return st, json.Unmarshal(b, &st) == nil
}

// WaitFor polls cond every few milliseconds until it holds, and fails the
// test if it does not within d.
func WaitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Gone reports whether pid no longer exists, not even as a zombie.
func Gone(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return os.IsNotExist(err)
}

// DeadOrZombie reports whether pid has exited, reaped or not: a zombie
// runs nothing and holds nothing but its pid.
func DeadOrZombie(pid int) bool {
	var r procfs.Reader
	st, err := r.Stat(pid)
	return err != nil || st.State == 'Z' || st.State == 'X'
}
