// Package testproc is shared test machinery: it builds testworker, a small
// program that plays the worker roles tests need (serve on an inherited
// socket, exit at once, ignore SIGTERM with a grandchild, describe its own
// process state), so tests run real processes rather than mocks.
//
// testworker is built without -race on purpose: a race-instrumented binary
// takes about a second to start here, which would dominate every respawn.
package testproc

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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
