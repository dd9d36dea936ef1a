package logs

import (
	"errors"
	"io"
	"os"
	"syscall"
	"testing"
	"time"
)

// TestPipeReader: the raw read gives what os.File.Read would: the data,
// io.EOF once the writer is gone, os.ErrClosed to a read waiting when the
// file is closed, and read(2)'s own error otherwise.
func TestPipeReader(t *testing.T) {
	r, w, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	pr := newPipeReader(r)
	w.WriteString("one\ntwo\n")
	buf := make([]byte, 64)
	if n, err := pr.Read(buf); err != nil || string(buf[:n]) != "one\ntwo\n" {
		t.Fatalf("Read = %q, %v; want the lines written", buf[:n], err)
	}
	w.Close()
	if n, err := pr.Read(buf); n != 0 || err != io.EOF {
		t.Errorf("Read after the writer closed = %d, %v; want io.EOF", n, err)
	}

	r2, w2, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	done := make(chan error, 1)
	go func() {
		_, err := newPipeReader(r2).Read(buf)
		done <- err
	}()
	// The read may be waiting already or not yet started: either way it
	// ends with os.ErrClosed.
	r2.Close()
	select {
	case err := <-done:
		if !errors.Is(err, os.ErrClosed) {
			t.Errorf("Read of a closed pipe = %v, want os.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a read waiting on a pipe closed under it did not return")
	}

	// A directory cannot be read: read(2) fails with EISDIR.
	dir, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if _, err := newPipeReader(dir).Read(buf); !errors.Is(err, syscall.EISDIR) {
		t.Errorf("Read of a directory = %v, want EISDIR", err)
	}
}
