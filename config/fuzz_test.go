package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and reports problems only as
// *Error values, whatever the input. Seeds are every .ini under testdata.
func FuzzParse(f *testing.F) {
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ini") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f.Add(data)
		return nil
	})
	if err != nil {
		f.Fatalf("seeding from testdata: %v", err)
	}
	f.Add([]byte("[watcher:w]\ncmd = a ; b\n  c\n\nx = \"\"\ny = `q\n[env:w[!a]*]\nK = $X$(circus.env.k)((circus.sockets.s))\n"))
	f.Add([]byte("[socket:s]\nport = 99999\n[watcher:W]\ncmd = $(circus.sockets.s)\n[watcher:w]\ncmd = x\nx = \"\"\"abc"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.ini", data)
		if c == nil {
			t.Fatalf("Parse() = nil config")
		}
		if err == nil {
			return
		}
		for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Errorf("Parse() error %v is not a *config.Error", e)
			}
		}
	})
}
