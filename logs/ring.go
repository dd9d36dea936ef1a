package logs

import (
	"bytes"
	"cmp"
	"slices"
	"sync"
	"time"
)

// RingBytes is how much recent output is kept of each worker, and
// keepExited how many exited workers keep theirs (a crash's last words are
// the output most worth seeing).
const (
	RingBytes  = 64 << 10
	keepExited = 8
)

// Line is one line of a worker's output.
type Line struct {
	// Seq numbers the lines of a watcher in the order they were read,
	// from 1; a client polling for more passes the last one it has.
	Seq    uint64
	Pid    int
	Stream Stream
	Time   time.Time
	// Data is the line without its '\n'. It is shared: do not modify.
	Data []byte
}

// Query selects lines for Tail.
type Query struct {
	Since  uint64  // only lines after this Seq
	Lines  int     // at most this many, the last ones; 0: all kept
	Pid    int     // only this worker's; 0: every worker's
	Stream *Stream // only this stream; nil: both
}

// Tail returns the kept lines q selects, oldest first, and the Seq of the
// last line read (kept or not), for the next Since.
func (o *Output) Tail(q Query) ([]Line, uint64) { return o.ring.tail(q) }

type ring struct {
	mu      sync.Mutex
	seq     uint64
	workers map[int]*workerRing
	exited  []int // pids in the order their output ended
}

type workerRing struct {
	recs   []record
	size   int
	open   int // pipes still read
	exited bool
}

// record is the lines of one read: seq is its first line's.
type record struct {
	seq    uint64
	stream Stream
	t      time.Time
	data   []byte
}

func (r *ring) init() { r.workers = map[int]*workerRing{} }

// attach starts keeping the output of worker pid, read from n pipes.
func (r *ring) attach(pid, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.workers[pid]
	if w == nil {
		w = &workerRing{}
		r.workers[pid] = w
	}
	if w.exited {
		// A new worker with a recycled pid.
		w.exited = false
		r.exited = slices.DeleteFunc(r.exited, func(p int) bool { return p == pid })
	}
	w.open += n
	if w.open == 0 {
		r.retire(pid, w)
	}
}

// detach notes the end of one pipe of worker pid.
func (r *ring) detach(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if w := r.workers[pid]; w != nil {
		w.open--
		if w.open == 0 {
			r.retire(pid, w)
		}
	}
}

func (r *ring) retire(pid int, w *workerRing) {
	w.exited = true
	r.exited = append(r.exited, pid)
	if len(r.exited) > keepExited {
		delete(r.workers, r.exited[0])
		r.exited = slices.Delete(r.exited, 0, 1)
	}
}

// add keeps lines (whole lines, each ending in '\n') of worker pid.
func (r *ring) add(pid int, s Stream, lines []byte, t time.Time) {
	n := uint64(bytes.Count(lines, []byte{'\n'}))
	keep := lines
	if len(keep) > RingBytes {
		keep = keep[len(keep)-RingBytes:]
		if i := bytes.IndexByte(keep, '\n'); i >= 0 && i < len(keep)-1 {
			keep = keep[i+1:]
		}
	}
	kept := uint64(bytes.Count(keep, []byte{'\n'}))
	data := bytes.Clone(keep)

	r.mu.Lock()
	defer r.mu.Unlock()
	first := r.seq + n - kept + 1
	r.seq += n
	w := r.workers[pid]
	if w == nil {
		return
	}
	w.recs = append(w.recs, record{seq: first, stream: s, t: t, data: data})
	w.size += len(data)
	drop := 0
	for w.size > RingBytes && drop < len(w.recs) {
		old := &w.recs[drop]
		excess := w.size - RingBytes
		if excess >= len(old.data) {
			w.size -= len(old.data)
			drop++
			continue
		}
		// Trim the oldest record to whole lines, so that what is kept
		// stays close to RingBytes however large the reads were.
		cut := len(old.data)
		if i := bytes.IndexByte(old.data[excess-1:], '\n'); i >= 0 {
			cut = excess + i
		}
		old.seq += uint64(bytes.Count(old.data[:cut], []byte{'\n'}))
		w.size -= cut
		old.data = old.data[cut:]
		if len(old.data) == 0 {
			drop++
		}
		break
	}
	if drop > 0 {
		w.recs = slices.Delete(w.recs, 0, drop)
	}
}

func (r *ring) tail(q Query) ([]Line, uint64) {
	r.mu.Lock()
	var lines []Line
	for pid, w := range r.workers {
		if q.Pid != 0 && pid != q.Pid {
			continue
		}
		for _, rec := range w.recs {
			if q.Stream != nil && rec.stream != *q.Stream {
				continue
			}
			data, seq := rec.data, rec.seq
			for len(data) > 0 {
				line, rest := cutLine(data)
				if seq > q.Since {
					lines = append(lines, Line{Seq: seq, Pid: pid, Stream: rec.stream, Time: rec.t,
						Data: bytes.TrimSuffix(line, []byte{'\n'})})
				}
				data = rest
				seq++
			}
		}
	}
	next := r.seq
	r.mu.Unlock()
	slices.SortFunc(lines, func(a, b Line) int { return cmp.Compare(a.Seq, b.Seq) })
	if q.Lines > 0 && len(lines) > q.Lines {
		lines = lines[len(lines)-q.Lines:]
	}
	return lines, next
}
