package testproc

import (
	"os"
	"os/exec"
	"testing"
)

// NeedRoot skips a test that must run as root to do what ("start the
// arbiter as nobody"), except with CI=true: CI runs as root, so there it
// fails.
func NeedRoot(t testing.TB, what string) {
	t.Helper()
	if os.Getuid() == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI runs as root, yet this test runs as uid %d", os.Getuid())
	}
	t.Skip("needs root to " + what)
}

// NeedUnshare is NeedRoot for a test that makes pid namespaces with
// unshare(1), which must also be installed.
func NeedUnshare(t testing.TB) {
	t.Helper()
	NeedRoot(t, "make pid namespaces")
	if _, err := exec.LookPath("unshare"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI has unshare: %v", err)
		}
		t.Skip(err)
	}
}
