package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzParse checks, whatever the input, that Parse neither panics nor
// misplaces a problem: every error and warning is a *Error naming the file,
// a line of it that holds the key named (or the section's header), and
// that the same bytes give the same Config and the same errors again. A
// file that loads must also read back the same through Watcher.With, which
// is how the set command re-reads a running watcher's options. Seeds are
// every .ini under testdata (Circus's own test files among them) and the
// corpus in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	for _, data := range testdataINI(f) {
		f.Add(data)
	}
	f.Add([]byte("[watcher:w]\ncmd = a ; b\n  c\n\nx = \"\"\ny = `q\n[env:w[!a]*]\nK = $X$(circus.env.k)((circus.sockets.s))\n"))
	f.Add([]byte("[socket:s]\nport = 99999\n[watcher:W]\ncmd = $(circus.sockets.s)\n[watcher:w]\ncmd = x\nx = \"\"\"abc"))
	f.Setenv("RINGMASTER_FUZZ", "$(circus.env.HOME)")
	f.Fuzz(func(t *testing.T, data []byte) {
		files := map[string][]byte{"fuzz.ini": data}
		c, err := Parse("fuzz.ini", data)
		if c == nil {
			t.Fatalf("Parse() = nil config")
		}
		checkProblems(t, files, c, err)
		again, err2 := Parse("fuzz.ini", data)
		checkSame(t, c, err, again, err2)
		if err == nil {
			checkWith(t, c)
		}
	})
}

// FuzzLoad drives the whole loader, includes too: main.ini, inc.ini and
// conf.d/more.ini in a temporary directory, main.ini loaded. It checks
// what FuzzParse does, with errors in any of the three files. An include
// is followed only inside the directory: an input whose main file could
// name a path outside it (see mayLeave) is skipped, for /dev/zero or a
// FIFO would hang the fuzzer, not the loader's logic.
func FuzzLoad(f *testing.F) {
	f.Add([]byte("[circus]\ninclude = inc.ini\ninclude_dir = conf.d\n[watcher:a]\ncmd = x\n"),
		[]byte("[watcher:a]\ncmd = y\nnumprocesses = 2\n[watcher:b]\ncmd = $(circus.env.RINGMASTER_FUZZ)\n"),
		[]byte("[env:b]\nK = $RINGMASTER_FUZZ\n[socket:s]\nhost = 127.0.0.1\nport = 0\n"))
	f.Add([]byte("[circus]\ninclude = inc*.ini nosuch.ini\n[env]\nA = 1\n"),
		[]byte("[watcher:x]\ncmd = $(circus.env.A)\nnumprocesses = ten\n"),
		[]byte("[plugin:p]\nuse = circus.plugins.flapping.Flapping\nattempts = 2\n"))
	f.Add([]byte("[circus]\ninclude_dir = conf.d\n"), []byte{}, []byte("[watcher:w]\ncmd = x\nuid = nosuchuser\n"))
	f.Setenv("RINGMASTER_FUZZ", "$(circus.env.HOME)")
	// One directory for every input, written over each time: a new one
	// per input would make the fuzzer's minimizing crawl.
	dir := f.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf.d"), 0o755); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, main, inc, more []byte) {
		if mayLeave(main) {
			t.Skip("an include that could leave the directory")
		}
		files := map[string][]byte{
			filepath.Join(dir, "main.ini"):           main,
			filepath.Join(dir, "inc.ini"):            inc,
			filepath.Join(dir, "conf.d", "more.ini"): more,
		}
		for name, data := range files {
			if err := os.WriteFile(name, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		path := filepath.Join(dir, "main.ini")
		c, err := Load(path)
		if c == nil {
			t.Fatalf("Load() = nil config, %v", err)
		}
		if len(c.Files) == 0 || c.Files[0] != path {
			t.Errorf("Load(%s).Files = %q, want the main file first", path, c.Files)
		}
		for _, name := range c.Files {
			if _, ok := files[name]; !ok {
				t.Errorf("Load(%s) read %s, outside the fuzzed files", path, name)
			}
		}
		checkProblems(t, files, c, err)
		again, err2 := Load(path)
		checkSame(t, c, err, again, err2)
		if err == nil {
			checkWith(t, c)
		}
	})
}

// mayLeave reports whether an include in main could name a file outside
// its directory: a pattern is a word of a value, so a word (split at
// spaces and the key delimiters too) that is absolute or holds ".." is one
// that could.
func mayLeave(main []byte) bool {
	if !bytes.Contains(bytes.ToLower(main), []byte("include")) {
		return false
	}
	words := bytes.FieldsFunc(main, func(r rune) bool { return unicode.IsSpace(r) || r == '=' || r == ':' })
	for _, w := range words {
		if w[0] == '/' || bytes.Contains(w, []byte("..")) {
			return true
		}
	}
	return false
}

// testdataINI returns every .ini file under testdata.
func testdataINI(f *testing.F) [][]byte {
	var out [][]byte
	err := filepath.WalkDir("testdata", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".ini") {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out = append(out, data)
		return nil
	})
	if err != nil {
		f.Fatalf("seeding from testdata: %v", err)
	}
	return out
}

// checkProblems checks that err joins only *Error values and that they and
// c's warnings each name one of files and a line of it: the line that holds
// the key named, or a section header (where a missing key is reported).
func checkProblems(t *testing.T, files map[string][]byte, c *Config, err error) {
	t.Helper()
	var problems []*Error
	if err != nil {
		joined, ok := err.(interface{ Unwrap() []error })
		if !ok {
			t.Fatalf("error %v is not a joined list", err)
		}
		for _, e := range joined.Unwrap() {
			var ce *Error
			if !errors.As(e, &ce) {
				t.Fatalf("error %v is not a *config.Error", e)
			}
			problems = append(problems, ce)
		}
	}
	problems = append(problems, c.Warnings...)
	for _, e := range problems {
		data, ok := files[e.File]
		if !ok {
			t.Errorf("%q names file %q, not one read", e, e.File)
			continue
		}
		lines := strings.Split(string(data), "\n")
		if e.Line < 1 || e.Line > len(lines) {
			t.Errorf("%q names line %d of a %d-line file", e, e.Line, len(lines))
			continue
		}
		line := lines[e.Line-1]
		if e.Key != "" && !strings.Contains(line, e.Key) && !strings.HasPrefix(line, "[") {
			t.Errorf("%q names key %q, but line %d is %q", e, e.Key, e.Line, line)
		}
	}
}

// checkSame checks that a second load of the same input gave the same.
func checkSame(t *testing.T, c *Config, err error, again *Config, err2 error) {
	t.Helper()
	if d := cmp.Diff(c, again, cmpopts.IgnoreUnexported(Config{}), cmpopts.EquateEmpty()); d != "" {
		t.Errorf("a second load differs (-first +second):\n%s", d)
	}
	if fmtErr(err) != fmtErr(err2) {
		t.Errorf("a second load's errors differ:\n%s\nthen:\n%s", fmtErr(err), fmtErr(err2))
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// checkWith checks that every watcher of a loaded c reads back the same
// from its own options, as the set command reads them.
func checkWith(t *testing.T, c *Config) {
	t.Helper()
	for _, w := range c.Watchers {
		w2, err := w.With(nil)
		if err != nil {
			t.Errorf("watcher %s loads, but With(nil) = %v", w.Name, err)
			continue
		}
		if d := cmp.Diff(w, w2, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("watcher %s differs after With(nil) (-loaded +re-read):\n%s", w.Name, d)
		}
	}
}
