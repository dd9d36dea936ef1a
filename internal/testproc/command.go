package testproc

import (
	"os"
	"os/exec"
	"testing"
)

// NeedCommand skips a test that runs the program name (systemd-analyze,
// ...) when it is not installed, except with CI=true: .ci/run installs it,
// so there its absence fails the test.
func NeedCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI installs %s (.ci/run): %v", name, err)
	}
	t.Skip(err)
	return ""
}
