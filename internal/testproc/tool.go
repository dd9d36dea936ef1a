package testproc

import (
	"os"
	"os/exec"
	"testing"
)

// NeedTool returns the path of the program name, which Debian package pkg
// installs (and .ci/run with it). Without it the test is skipped, except
// with CI=true, where it fails: CI must run every test.
func NeedTool(t testing.TB, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI lacks %s (Debian package %s; .ci/run installs it): %v", name, pkg, err)
	}
	t.Skipf("needs %s (apt-get install %s)", name, pkg)
	return ""
}
