package logs

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/strftime"
)

// Stream names one of a worker's two output streams.
type Stream uint8

// A worker's output streams.
const (
	Stdout Stream = iota
	Stderr
)

func (s Stream) String() string {
	if s == Stderr {
		return "stderr"
	}
	return "stdout"
}

// Console is the arbiter's own stdout or stderr. Every watcher that writes
// there shares it, and it writes each batch of lines in one piece, so that
// lines of different workers never interleave.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole returns a Console writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

func (c *Console) write(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.w.Write(p)
	return err
}

// Consoles are the arbiter's own outputs, for the streams that write there.
type Consoles struct {
	Stdout, Stderr *Console
}

// errClosed is what a write to a Dest replaced since returns: the writer
// takes the new one.
var errClosed = errors.New("stream closed")

// Dest is one opened destination of a watcher's stream: a file, the
// arbiter's output, or nowhere (QueueStream: the output is only kept in
// memory). Writes to it are serialized.
type Dest struct {
	spec config.Stream
	path string

	// turn is the lock of writes (a channel, so that waiting for it can
	// time out): lines of one batch are written together.
	turn    chan struct{}
	sink    sink // nil: nowhere
	closed  bool
	failing bool // the last write failed
}

// stuckAfter is how long a Dest is waited for before a write that holds it
// is taken for stuck (a FIFO that nobody reads) and made to fail.
const stuckAfter = time.Second

// Open opens the destination spec gives to stream s of watcher name.
// Streams that write to the arbiter's own output use con.
func Open(name string, s Stream, spec config.Stream, con Consoles) (*Dest, error) {
	d := &Dest{spec: spec, turn: make(chan struct{}, 1)}
	switch spec.Class {
	case "FileStream", "WatchedFileStream", "TimedRotatingFileStream":
		sk, path, err := openFile(spec, name, s.String())
		if err != nil {
			return nil, err
		}
		d.sink, d.path = sk, path
	case "QueueStream":
	case "", "StdoutStream", "FancyStdoutStream":
		c := con.Stdout
		if spec.Class == "" && s == Stderr {
			// Circus's StdoutStream writes to stdout whichever stream
			// it carries; with no stream, stderr stays stderr.
			c = con.Stderr
		}
		cs := &consoleSink{c: c, name: name}
		if spec.TimeFormat != "" {
			f, err := strftime.Compile(spec.TimeFormat)
			if err != nil {
				return nil, fmt.Errorf("time_format: %w", err)
			}
			cs.tf = f
		}
		if spec.Class == "FancyStdoutStream" {
			cs.color = fancyColor(spec.Color, name)
		}
		d.sink = cs
	default:
		return nil, fmt.Errorf("unknown stream class %q", spec.Class)
	}
	return d, nil
}

// Spec returns the configuration the destination was opened with.
func (d *Dest) Spec() config.Stream { return d.spec }

// Path returns the file the destination writes ("" for the arbiter's
// output), chosen by Open when a file stream names none.
func (d *Dest) Path() string { return d.path }

func (d *Dest) lock()   { d.turn <- struct{}{} }
func (d *Dest) unlock() { <-d.turn }

// lockWithin takes the lock if it comes within wait.
func (d *Dest) lockWithin(wait time.Duration) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case d.turn <- struct{}{}:
		return true
	case <-t.C:
		return false
	}
}

// write writes lines and reports whether the destination went from
// working to failing or back. A closed one returns errClosed and reports no
// change: it is not failing, only gone.
func (d *Dest) write(lines []byte, pid int, t time.Time) (flipped bool, err error) {
	d.lock()
	defer d.unlock()
	if d.closed {
		return false, errClosed
	}
	if d.sink != nil {
		err = d.sink.write(lines, pid, t)
	}
	flipped = (err != nil) != d.failing
	d.failing = err != nil
	return flipped, err
}

// reopen opens the file again, unless a write has been stuck in it for
// stuckAfter: reopening the same path would not help that one.
func (d *Dest) reopen() error {
	if !d.lockWithin(stuckAfter) {
		return fmt.Errorf("%s: a write has been waiting for %v; not reopened", d.path, stuckAfter)
	}
	defer d.unlock()
	if d.closed || d.sink == nil {
		return nil
	}
	return d.sink.reopen()
}

// Close closes the destination. A write under way finishes first, unless
// it is stuck (see stuckAfter): then it is made to fail, and its writer
// takes its lines to the destination that replaced this one, if any.
func (d *Dest) Close() error {
	if !d.lockWithin(stuckAfter) {
		if d.sink != nil {
			d.sink.abort()
		}
		d.lock()
	}
	defer d.unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.sink == nil {
		return nil
	}
	return d.sink.close()
}

// fancyColor returns the ANSI colour number of FancyStdoutStream's color,
// or one taken from the watcher's name, so that a watcher keeps its colour
// from one run to the next (Circus picks one at random).
func fancyColor(color, name string) int {
	if i := slices.Index(config.FancyColors, color); i >= 0 {
		return 31 + i
	}
	h := fnv.New32a()
	h.Write([]byte(name))
	return 31 + int(h.Sum32()%uint32(len(config.FancyColors)))
}

// consoleSink writes lines to the arbiter's output as
// "[<time> ]<name>[<pid>]: <line>", or for FancyStdoutStream coloured as
// "<time> <name>[<pid>] | <line>".
type consoleSink struct {
	c     *Console
	name  string
	tf    *strftime.Format
	color int    // 0: none
	head  []byte // the prefix of the batch being written, reused
	buf   []byte
}

func (s *consoleSink) write(lines []byte, pid int, t time.Time) error {
	head := s.head[:0]
	if s.color != 0 {
		head = append(head, "\033[0;"...)
		head = strconv.AppendInt(head, int64(s.color), 10)
		head = append(head, 'm')
	}
	if s.tf != nil {
		head = s.tf.Append(head, t)
		head = append(head, ' ')
	}
	head = append(head, s.name...)
	head = append(head, '[')
	head = strconv.AppendInt(head, int64(pid), 10)
	if s.color != 0 {
		head = append(head, "] | "...)
	} else {
		head = append(head, "]: "...)
	}
	s.head = head
	buf := s.buf[:0]
	for len(lines) > 0 {
		line, rest := cutLine(lines)
		buf = append(buf, head...)
		buf = append(buf, line[:len(line)-1]...)
		if s.color != 0 {
			buf = append(buf, "\033[0m"...)
		}
		buf = append(buf, '\n')
		lines = rest
	}
	if cap(buf) <= 1<<20 {
		s.buf = buf
	}
	return s.c.write(buf)
}

func (s *consoleSink) reopen() error { return nil }
func (s *consoleSink) close() error  { return nil }
func (s *consoleSink) abort()        {}

// cutLine returns the first line of lines, with its '\n', and the rest.
// lines ends in '\n'.
func cutLine(lines []byte) (line, rest []byte) {
	if i := bytes.IndexByte(lines, '\n'); i >= 0 {
		return lines[:i+1], lines[i+1:]
	}
	return lines, nil
}
