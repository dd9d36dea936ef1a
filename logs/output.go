package logs

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// MaxLine is the longest line written whole. Output that runs longer
// without a newline is written in pieces of this size, each ended as a
// line, so that one worker cannot make the arbiter hold unbounded memory.
const MaxLine = 4 << 20

// A pipe's read buffer starts at firstRead, enough for a quiet worker's
// lines, and grows fourfold whenever a read fills it, up to readSize, a
// default pipe's capacity. A worker that fills its pipe even then gets a
// pipe and a buffer of busySize: fewer wake-ups and larger writes while it
// floods. Quiet workers keep the small sizes, which keeps both the
// arbiter's memory and the kernel's per-user budget of pipe memory
// (fs.pipe-user-pages-soft) for the busy ones.
const (
	firstRead = 4 << 10
	readSize  = 64 << 10
	busySize  = 1 << 20
)

// Output is where the workers of one watcher write: a Dest for each of
// their two streams, which can be replaced while they run, and the recent
// output of each worker.
type Output struct {
	log   *slog.Logger
	dests [2]atomic.Pointer[Dest]
	ring  ring

	wg    sync.WaitGroup // readers
	mu    sync.Mutex
	pipes map[*os.File]Stream // read ends being read
	hand  handOver            // an upgrade's Detach, Resume and Adopt
}

// NewOutput returns an output writing to stdout and stderr (which it now
// owns and closes); log is the watcher's.
func NewOutput(stdout, stderr *Dest, log *slog.Logger) *Output {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Output{log: log, pipes: map[*os.File]Stream{}, hand: handOver{ringFD: -1}}
	o.ring.init()
	o.dests[Stdout].Store(stdout)
	o.dests[Stderr].Store(stderr)
	return o
}

// Dest returns the destination of stream s.
func (o *Output) Dest(s Stream) *Dest { return o.dests[s].Load() }

// Use replaces the destination of stream s with d, without stopping any
// worker: lines read from now on go to d. The old one is closed once the
// write under way, if any, is done.
func (o *Output) Use(s Stream, d *Dest) {
	old := o.dests[s].Swap(d)
	if old != nil && old != d {
		if err := old.Close(); err != nil {
			o.log.Warn("closing stream", "stream", s.String(), "path", old.path, "err", err)
		}
	}
}

// Reopen opens every file again at its path: after an external logrotate
// moved them away (SIGUSR1).
func (o *Output) Reopen() error {
	var errs []error
	for s := range o.dests {
		if err := o.dests[s].Load().reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Pipes are the two pipes of one worker being started.
type Pipes struct {
	o    *Output
	w, r [2]*os.File
}

// Pipes makes the pipes of a worker's stdout and stderr, for those that
// are captured; the worker gets Writer's ends.
func (o *Output) Pipes(stdout, stderr bool) (*Pipes, error) {
	p := &Pipes{o: o}
	for s, want := range []bool{stdout, stderr} {
		if !want {
			continue
		}
		r, w, err := Pipe()
		if err != nil {
			p.Abort()
			return nil, err
		}
		p.r[s], p.w[s] = r, w
	}
	return p, nil
}

// Writer returns the end of stream s that the worker writes, or nil when
// that stream is not captured.
func (p *Pipes) Writer(s Stream) *os.File { return p.w[s] }

// Start begins reading what worker pid writes, once it is started (the
// arbiter's copies of the writing ends are closed, so that the reader sees
// the end of the output when the worker and what it started have exited).
func (p *Pipes) Start(pid int) {
	n := 0
	for s := range p.r {
		if p.w[s] != nil {
			p.w[s].Close()
		}
		if p.r[s] != nil {
			n++
		}
	}
	if n == 0 {
		return
	}
	o := p.o
	o.ring.attach(pid, n)
	o.mu.Lock()
	defer o.mu.Unlock()
	for s, r := range p.r {
		if r == nil {
			continue
		}
		o.startLocked(r, pid, Stream(s), nil)
	}
}

// Abort closes the pipes of a worker that did not start.
func (p *Pipes) Abort() {
	for s := range p.r {
		for _, f := range []*os.File{p.r[s], p.w[s]} {
			if f != nil {
				f.Close()
			}
		}
	}
}

// read copies one stream of one worker, whole lines at a time, until its
// end, or until a Detach stops it; partial is the start of a line read
// before (by the reader a Detach stopped).
func (o *Output) read(r *os.File, pid int, s Stream, partial []byte) {
	held := false
	defer func() {
		if held {
			return
		}
		o.mu.Lock()
		delete(o.pipes, r)
		o.quietLocked()
		o.mu.Unlock()
		r.Close()
		o.ring.detach(pid)
	}()
	// One spare byte of capacity: room for the '\n' that ends a piece of
	// an overlong line, or the last line of output without one.
	base := firstRead
	buf := make([]byte, max(base, len(partial)), max(base, len(partial))+1)
	n := copy(buf, partial) // buf[:n] holds the start of a line not yet ended
	pr := newPipeReader(r)
	for {
		if n == len(buf) {
			if n >= MaxLine {
				o.emit(s, pid, append(buf[:n], '\n'), time.Now())
				n = 0
			} else {
				buf = resize(buf, n, min(2*len(buf), MaxLine))
			}
		}
		m, err := pr.Read(buf[n:])
		if m > 0 {
			switch {
			case n+m < len(buf) || base == busySize:
			case base < readSize:
				base = min(4*base, readSize)
			case m >= readSize:
				// The pipe was full: the worker writes faster than
				// one read a wake-up drains.
				base = busySize
				enlargePipe(r, busySize)
			}
			n += m
			if i := bytes.LastIndexByte(buf[n-m:n], '\n'); i >= 0 {
				end := n - m + i + 1
				o.emit(s, pid, buf[:end], time.Now())
				n = copy(buf, buf[end:n])
			}
			if len(buf) != base && n <= base {
				// Back to the usual size: a long line is over, or
				// the worker turned busy.
				buf = resize(buf, n, base)
			}
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			// Only Detach sets a deadline.
			if held = o.hold(r, pid, s, buf[:n]); held {
				return
			}
			continue
		}
		if err != nil {
			if n > 0 {
				o.emit(s, pid, append(buf[:n], '\n'), time.Now())
			}
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) {
				o.log.Warn("reading worker output", "pid", pid, "stream", s.String(), "err", err)
			}
			return
		}
	}
}

// resize returns a buffer of size (and one spare byte) holding buf[:n].
func resize(buf []byte, n, size int) []byte {
	nb := make([]byte, size, size+1)
	copy(nb, buf[:n])
	return nb
}

// enlargePipe asks for a pipe of size; a refusal (the user's budget of
// pipe memory is spent) leaves it as it is.
func enlargePipe(r *os.File, size int) {
	if rc, err := r.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { unix.FcntlInt(fd, unix.F_SETPIPE_SZ, size) })
	}
}

// emit writes whole lines of worker pid and keeps them for Tail.
func (o *Output) emit(s Stream, pid int, lines []byte, t time.Time) {
	o.ring.add(pid, s, lines, t)
	for {
		d := o.dests[s].Load()
		flipped, err := d.write(lines, pid, t)
		if err != nil && o.dests[s].Load() != d {
			// Replaced by Use since we loaded it (and closed, or
			// made to fail if the write was stuck): the new one
			// takes the lines.
			continue
		}
		// The first failure and the recovery are logged, not every
		// failed write of a full disk.
		switch {
		case !flipped:
		case err != nil:
			o.log.Error("writing worker output; lines are lost until it recovers", "stream", s.String(), "path", d.path, "err", err)
		default:
			o.log.Info("writing worker output again", "stream", s.String(), "path", d.path)
		}
		return
	}
}

// Close waits up to grace for the workers' output to end (their pipes
// close when they and what they started have exited), then stops reading
// what is left (a daemon a worker left behind may hold its pipe for ever),
// and closes the destinations. It reports the readers it had to abandon,
// stuck writing to a destination that does not take their lines.
func (o *Output) Close(grace time.Duration) {
	o.dropHeld()
	if !waitTimeout(&o.wg, grace) {
		o.mu.Lock()
		n := len(o.pipes)
		for r := range o.pipes {
			r.Close()
		}
		o.mu.Unlock()
		o.log.Warn("output still open after its workers exited: no longer read", "pipes", n)
	}
	// A reader stuck writing to a destination that takes nothing more (a
	// FIFO nobody reads) is made to fail by Close.
	for s := range o.dests {
		if err := o.dests[s].Load().Close(); err != nil {
			o.log.Warn("closing stream", "stream", Stream(s).String(), "err", err)
		}
	}
	if !waitTimeout(&o.wg, time.Second) {
		o.log.Error("output stuck: abandoned")
	}
}

// waitTimeout waits for wg up to d and reports whether it is done.
func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// Pipe returns a pipe whose reading end is non-blocking, read through Go's
// poller so that a quiet worker holds no thread, and whose writing end is
// blocking, as a worker expects its stdout to be: os.Pipe makes both ends
// non-blocking, and a worker in C or Python then fails with EAGAIN when
// the pipe is full instead of waiting.
func Pipe() (r, w *os.File, err error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, os.NewSyscallError("pipe2", err)
	}
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, nil, os.NewSyscallError("fcntl", err)
	}
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}
