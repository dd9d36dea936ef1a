package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The arbiter needs cgo. A build without it (CGO_ENABLED=0, or no C
// compiler on PATH, where the go command turns cgo off itself) fails with
// one line that says so, not a page of undefined names (issue 17).
func TestBuildWithoutCgoSaysWhy(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	noCC := t.TempDir() // a PATH holding the go command and no C compiler
	if err := os.Symlink(goBin, filepath.Join(noCC, "go")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  []string
	}{
		{"CGO_ENABLED=0", []string{"CGO_ENABLED=0"}},
		{"no C compiler", []string{"PATH=" + noCC, "CGO_ENABLED=", "CC="}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(goBin, "build", "-o", os.DevNull, ".")
			cmd.Env = append(os.Environ(), tc.env...)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatal("go build succeeded without cgo")
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			if len(lines) != 1 || !strings.Contains(lines[0], "install_a_C_compiler") || !strings.Contains(lines[0], "CGO_ENABLED_1") {
				t.Errorf("go build without cgo says:\n%s\nwant one line saying to install a C compiler", out)
			}
		})
	}
}
