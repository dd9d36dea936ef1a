package handover

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

type testDoc struct {
	Header
	Workers []int `json:"workers"`
}

// A document written is read back whole, from an fd that an exec keeps
// (close-on-exec clear), and can be read again (the way back reads it
// once more).
func TestWriteRead(t *testing.T) {
	fd, err := Write(testDoc{Header: Header{Format: Format, Version: "v1"}, Workers: []int{3, 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC != 0 {
		t.Errorf("document fd flags %#x (%v), want close-on-exec clear", fl, err)
	}
	for range 2 {
		var d testDoc
		h, err := Read(fd, &d)
		if err != nil || h.Version != "v1" || h.Format != Format || len(d.Workers) != 2 || d.Workers[1] != 4 {
			t.Fatalf("Read = %+v, %+v, %v", h, d, err)
		}
	}
}

// A format this binary does not read is refused before anything of the
// document is decoded, and so is a document that is not one.
func TestReadRefuses(t *testing.T) {
	for _, c := range []struct {
		doc  string
		want string
	}{
		{`{"format": 99, "version": "v9", "workers": [1]}`, "unknown hand-over format 99"},
		{`{"version": "v9"}`, "unknown hand-over format 0"},
		{`[1, 2]`, "not a hand-over document"},
		{`{"format": "one"}`, "format"},
		{`{"format": 1, "workers": "x"}`, "format 1"},
	} {
		fd, err := unix.MemfdCreate("test", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, []byte(c.doc)); err != nil {
			t.Fatal(err)
		}
		var d testDoc
		_, err = Read(fd, &d)
		unix.Close(fd)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Read(%s) = %v, want an error saying %q", c.doc, err, c.want)
		}
		if strings.Contains(c.doc, "99") && (!errors.Is(err, ErrFormat) || d.Workers != nil) {
			t.Errorf("Read of format 99: %v, workers %v; want ErrFormat, nothing decoded", err, d.Workers)
		}
	}
}

// FromEnv finds the document's fd, removes the variable (no worker
// inherits it), and refuses a value that is no fd.
func TestFromEnv(t *testing.T) {
	if _, ok, _ := FromEnv(); ok {
		t.Fatal("FromEnv without the variable: ok")
	}
	t.Setenv(EnvState, strconv.Itoa(7))
	fd, ok, err := FromEnv()
	if !ok || err != nil || fd != 7 {
		t.Errorf("FromEnv = %d, %v, %v; want 7", fd, ok, err)
	}
	if _, set := unix.Getenv(EnvState); set {
		t.Error("the variable is still set")
	}
	for _, v := range []string{"x", "1", "-3"} {
		t.Setenv(EnvState, v)
		if _, ok, err := FromEnv(); !ok || err == nil {
			t.Errorf("FromEnv with %s=%q: ok %v, err %v; want an error", EnvState, v, ok, err)
		}
	}
}
