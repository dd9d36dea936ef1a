package handover

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Format is the version of the document this binary writes. A binary reads
// every format from MinFormat to Format; a newer one must keep reading the
// formats before it, so that an upgrade from any release since MinFormat
// works.
const (
	Format    = 1
	MinFormat = 1
)

// The environment variables of a hand-over: EnvState names the fd of the
// document; EnvFailed, set only on the way back, says why the new image
// gave up, for the old one to report.
const (
	EnvState  = "RINGMASTER_UPGRADE"
	EnvExe    = "RINGMASTER_UPGRADE_EXE" // the old binary, open, for the way back
	EnvFailed = "RINGMASTER_UPGRADE_FAILED"
)

// ErrFormat is returned by [Read] for a document of a format this binary
// does not read.
var ErrFormat = errors.New("unknown hand-over format")

// Header is the part of the document every format shares, read before the
// rest so that an unknown format is refused without interpreting it.
type Header struct {
	Format int `json:"format"`
	// Version is the build version of the image that wrote it, for the
	// log, the event and the console of the next ("0.18.0 -> 0.19.0").
	Version string `json:"version"`
}

// Write puts doc (a JSON-able value whose encoding starts with Header's
// fields) into a new memfd and returns its fd, close-on-exec cleared.
func Write(doc any) (int, error) {
	b, err := json.Marshal(doc)
	if err != nil {
		return -1, fmt.Errorf("hand-over: encode: %w", err)
	}
	fd, err := unix.MemfdCreate("ringmaster-handover", 0)
	if err != nil {
		return -1, fmt.Errorf("hand-over: memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "handover")
	if _, err := f.Write(b); err != nil {
		f.Close()
		return -1, fmt.Errorf("hand-over: write: %w", err)
	}
	// The new image reads it from the start; the old one keeps no
	// *os.File whose finalizer would close the fd under the exec.
	nfd, err := unix.Dup(fd)
	f.Close()
	if err != nil {
		return -1, fmt.Errorf("hand-over: dup: %w", err)
	}
	if _, err := unix.Seek(nfd, 0, io.SeekStart); err != nil {
		unix.Close(nfd)
		return -1, fmt.Errorf("hand-over: seek: %w", err)
	}
	return nfd, nil
}

// FromEnv returns the fd named by EnvState and removes the variable from
// the environment (so that no worker inherits it); ok is false when this
// image was not started by a hand-over.
func FromEnv() (fd int, ok bool, err error) {
	v, set := os.LookupEnv(EnvState)
	if !set {
		return -1, false, nil
	}
	os.Unsetenv(EnvState)
	fd, err = strconv.Atoi(v)
	if err != nil || fd < 3 {
		return -1, true, fmt.Errorf("hand-over: %s=%q is not an fd", EnvState, v)
	}
	return fd, true, nil
}

// Read reads the document at fd into doc, once its Header says its format
// is one this binary reads; it returns the header either way. The fd is
// left open (and positioned at its start), for a way back.
func Read(fd int, doc any) (Header, error) {
	b, err := readAll(fd)
	if err != nil {
		return Header{}, err
	}
	h, err := readHeader(b)
	if err != nil {
		return h, fmt.Errorf("hand-over: %w", err)
	}
	if h.Format < MinFormat || h.Format > Format {
		return h, fmt.Errorf("%w %d (this binary reads %d to %d)", ErrFormat, h.Format, MinFormat, Format)
	}
	if err := json.Unmarshal(b, doc); err != nil {
		return h, fmt.Errorf("hand-over: format %d: %w", h.Format, err)
	}
	return h, nil
}

// readAll reads fd from its start without moving its offset.
func readAll(fd int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for off := int64(0); ; {
		n, err := unix.Pread(fd, buf, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("hand-over: read: %w", err)
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		off += int64(n)
	}
}

// readHeader reads the Header's fields of the document b without decoding
// the rest of it (a thousand workers' state is most of the hand-over's
// bytes, decoded once, by Read, into the format it is known to be).
func readHeader(b []byte) (Header, error) {
	var h Header
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return h, fmt.Errorf("not a hand-over document (%v)", err)
	}
	for found := 0; found < 2 && dec.More(); {
		t, err := dec.Token()
		if err != nil {
			return h, err
		}
		var dst any = new(json.RawMessage)
		switch t {
		case "format":
			dst, found = &h.Format, found+1
		case "version":
			dst, found = &h.Version, found+1
		}
		if err := dec.Decode(dst); err != nil {
			return h, fmt.Errorf("%v: %w", t, err)
		}
	}
	return h, nil
}
