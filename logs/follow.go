package logs

import (
	"bytes"
	"cmp"
	"os"
	"slices"
	"time"
)

// Page is what Follow returns: the lines after a reader's last, and what
// it missed.
type Page struct {
	Lines []Line
	// Next is the Seq to pass as since next time: the last line's when
	// the page was full, else the last line read.
	Next uint64
	// Dropped counts the lines after since that are no longer kept: the
	// reader fell further behind than the ring holds, or the workers that
	// wrote them are forgotten (only the last few exited ones are kept).
	// Lines left out for being older than from are not counted.
	Dropped uint64
	// More reports a full page: call again at once for the rest.
	More bool
}

// Follow returns at most limit lines (0: no limit) (every worker's, exited ones' too) read
// after since and at or after from, oldest first. A since beyond the last
// line read (the reader knew an earlier run of the arbiter) reads from the
// start.
//
// A reader that follows this way costs the workers and the watcher
// nothing, however slowly it reads: the ring is the only buffer, and what
// the reader misses is counted in Dropped rather than held for it.
func (o *Output) Follow(since uint64, from time.Time, limit int) Page {
	return o.ring.follow(since, from, limit)
}

func (r *ring) follow(since uint64, from time.Time, limit int) Page {
	r.mu.Lock()
	if since > r.seq {
		since = 0
	}
	var lines []Line
	var old [][2]uint64 // seqs of kept lines after since left out for being before from
	for pid, w := range r.workers {
		for _, rec := range w.recs {
			n := uint64(bytes.Count(rec.data, []byte{'\n'}))
			if rec.seq+n-1 <= since {
				continue
			}
			if rec.t.Before(from) {
				old = append(old, [2]uint64{max(rec.seq, since+1), rec.seq + n - 1})
				continue
			}
			data, seq := rec.data, rec.seq
			for len(data) > 0 {
				line, rest := cutLine(data)
				if seq > since {
					lines = append(lines, Line{Seq: seq, Pid: pid, Stream: rec.stream, Time: rec.t,
						Data: bytes.TrimSuffix(line, []byte{'\n'})})
				}
				data = rest
				seq++
			}
		}
	}
	p := Page{Next: r.seq}
	r.mu.Unlock()
	slices.SortFunc(lines, func(a, b Line) int { return cmp.Compare(a.Seq, b.Seq) })
	if limit > 0 && len(lines) > limit {
		lines, p.Next, p.More = lines[:limit], lines[limit-1].Seq, true
	}
	p.Lines = lines
	p.Dropped = p.Next - since - uint64(len(lines))
	for _, o := range old {
		if o[0] <= p.Next {
			p.Dropped -= min(o[1], p.Next) - o[0] + 1
		}
	}
	return p
}

// Journal keeps the recent lines of the arbiter's own log, as an Output
// keeps a worker's, so that `circusctl logs` shows them beside the
// workers'. It is an io.Writer for a log handler: each Write is one or
// more whole lines. It is safe for concurrent use.
type Journal struct {
	pid  int
	ring ring
}

// NewJournal returns an empty Journal of this process's lines.
func NewJournal() *Journal {
	j := &Journal{pid: os.Getpid()}
	j.ring.init()
	j.ring.attach(j.pid, 1)
	return j
}

// Write keeps p, read now, as lines of the arbiter's stderr; a last line
// without its '\n' is ended. It never fails.
func (j *Journal) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	lines := p
	if lines[len(lines)-1] != '\n' {
		lines = append(bytes.Clone(p), '\n')
	}
	j.ring.add(j.pid, Stderr, lines, time.Now())
	return len(p), nil
}

// Follow is [Output.Follow] for the arbiter's own lines.
func (j *Journal) Follow(since uint64, from time.Time, limit int) Page {
	return j.ring.follow(since, from, limit)
}

// Tail is [Output.Tail] for the arbiter's own lines.
func (j *Journal) Tail(q Query) ([]Line, uint64) { return j.ring.tail(q) }
