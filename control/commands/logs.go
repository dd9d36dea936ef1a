package commands

import (
	"context"
	"slices"
	"strconv"
	"time"
	"unsafe"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// logsPage bounds the lines a logs reply carries of one source: a follower
// that fell far behind gets the rest in the next replies ("more").
const logsPage = 2000

// logSource is one output logs reads: a watcher's, or the arbiter's own.
type logSource struct {
	watcher string // "" for the arbiter's own log
	tail    func(logs.Query) ([]logs.Line, uint64)
	follow  func(since uint64, from time.Time, limit int) logs.Page
}

// logsRequest is a validated logs request.
type logsRequest struct {
	sources []logSource
	lines   int
	from    time.Time // zero: no "since"
	after   map[string]uint64
	// afterArbiter is the arbiter's own log's cursor; follow is whether
	// the request carries a cursor at all.
	afterArbiter uint64
	follow       bool
}

// cmdLogs is Ringmaster's own: the recent output of every watcher's workers
// (exited ones included) and the arbiter's own log lines, merged in time
// order, as journalctl shows a machine's. Properties: names (the watchers
// to read; default all); arbiter (include the arbiter's own log; default
// true when names is absent); lines (the last N lines; default 10, all
// when since is given); since (only lines of the last so many seconds).
// A follower passes back the reply's after and after_arbiter (the last
// line read of each source) and gets what came since, in time order per
// reply; more: true says to ask again at once. dropped (by watcher) and
// dropped_arbiter count the lines a follower missed because it read
// slower than they were written: the arbiter keeps a bounded amount of
// each worker's output and never waits for a reader.
//
// Each line has time, watcher ("" for the arbiter's own), pid, stream
// ("stdout", "stderr", or "log" for the arbiter's own) and data.
func cmdLogs(t *Table, req control.Request) (job, *control.Error) {
	r, e := t.logsRequest(req)
	if e != nil {
		return job{}, e
	}
	return now(func(context.Context) control.Reply { return r.run() })
}

func (t *Table) logsRequest(req control.Request) (*logsRequest, *control.Error) {
	names, e := req.StringsOr("names", nil)
	if e != nil {
		return nil, e
	}
	withArbiter, e := req.BoolOr("arbiter", names == nil)
	if e != nil {
		return nil, e
	}
	r := &logsRequest{}
	if r.after, e = req.CountsOr("after"); e != nil {
		return nil, e
	}
	after, e := req.IntOr("after_arbiter", 0)
	if e != nil {
		return nil, e
	}
	if after < 0 {
		return nil, control.Errorf(control.MessageError, "after_arbiter: %d is negative", after)
	}
	r.afterArbiter = uint64(after)
	r.follow = req.Has("after") || req.Has("after_arbiter")
	since, e := req.FloatOr("since", 0)
	if e != nil {
		return nil, e
	}
	if since < 0 {
		return nil, control.Errorf(control.MessageError, "since: %g is negative", since)
	}
	if req.Has("since") {
		r.from = time.Now().Add(-time.Duration(since * float64(time.Second)))
	}
	def := int64(10)
	if req.Has("since") {
		def = 0
	}
	n, e := req.IntOr("lines", def)
	if e != nil {
		return nil, e
	}
	if n < 0 {
		return nil, control.Errorf(control.MessageError, "lines: %d is negative", n)
	}
	r.lines = int(n)

	var ws []*arbiter.Watcher
	if names == nil {
		ws = t.a.Watchers()
	}
	for _, name := range names {
		w := t.a.Watcher(name)
		if w == nil {
			return nil, t.notFound(name)
		}
		if !slices.Contains(ws, w) {
			ws = append(ws, w)
		}
	}
	for _, w := range ws {
		o := w.Output()
		r.sources = append(r.sources, logSource{watcher: w.Name(), tail: o.Tail, follow: o.Follow})
	}
	if j := t.opts.Journal; withArbiter && j != nil {
		r.sources = append(r.sources, logSource{tail: j.Tail, follow: j.Follow})
	}
	return r, nil
}

// sourced is a line and the source it came from, by index.
type sourced struct {
	src int
	*logs.Line
}

func (r *logsRequest) run() control.Reply {
	got := make([][]logs.Line, len(r.sources))
	after, dropped := control.Object{}, control.Object{}
	var afterArbiter, droppedArbiter uint64
	more := false
	for i, s := range r.sources {
		var next, lost uint64
		if !r.follow && r.lines > 0 {
			got[i], next = s.tail(logs.Query{Lines: r.lines})
			got[i] = slices.DeleteFunc(got[i], func(l logs.Line) bool { return l.Time.Before(r.from) })
		} else {
			since := r.afterArbiter
			if s.watcher != "" {
				since = r.after[s.watcher]
			}
			if !r.follow {
				since = 0
			}
			p := s.follow(since, r.from, logsPage)
			got[i], next = p.Lines, p.Next
			if r.follow {
				// Lines gone before a first call are history, not
				// lines this reader missed.
				lost = p.Dropped
			}
			more = more || p.More
		}
		if s.watcher == "" {
			afterArbiter, droppedArbiter = next, lost
			continue
		}
		after = append(after, field(s.watcher, int64(next)))
		if lost > 0 {
			dropped = append(dropped, field(s.watcher, int64(lost)))
		}
	}
	lines := merge(got)
	if !r.follow && r.lines > 0 && len(lines) > r.lines {
		lines = lines[len(lines)-r.lines:]
	}
	fields := []control.Field{field("lines", r.render(lines)), field("after", after), field("dropped", dropped), field("more", more)}
	if slices.ContainsFunc(r.sources, func(s logSource) bool { return s.watcher == "" }) {
		fields = append(fields, field("after_arbiter", int64(afterArbiter)), field("dropped_arbiter", int64(droppedArbiter)))
	}
	return control.OK(fields...)
}

// merge returns the lines of every source in time order, and in the
// source's own order for lines of one time (those of one read). Each
// source's lines come in the order they were read, which is their time
// order but for lines of two pipes read at the same moment: a source is
// sorted only if need be, and the sources are then merged.
func merge(srcs [][]logs.Line) []sourced {
	n := 0
	for i, ls := range srcs {
		n += len(ls)
		if !slices.IsSortedFunc(ls, func(a, b logs.Line) int { return a.Time.Compare(b.Time) }) {
			slices.SortStableFunc(srcs[i], func(a, b logs.Line) int { return a.Time.Compare(b.Time) })
		}
	}
	out := make([]sourced, 0, n)
	heads := make([]int, len(srcs))
	for len(out) < n {
		first := -1
		for i, ls := range srcs {
			if heads[i] < len(ls) && (first < 0 || ls[heads[i]].Time.Before(srcs[first][heads[first]].Time)) {
				first = i
			}
		}
		out = append(out, sourced{first, &srcs[first][heads[first]]})
		heads[first]++
	}
	return out
}

// render writes lines as the reply's list of objects {time, watcher, pid,
// stream, data}, directly: a follower of busy workers gets thousands of
// lines a second, which values boxed one by one would make the arbiter's
// largest cost.
func (r *logsRequest) render(lines []sourced) control.Rendered {
	// At most plain lines' size: 58 bytes of keys and punctuation, a
	// time of up to 17 characters, a pid of up to 7 digits, a stream of
	// 6, and the quotes of watcher and data. Too little and the buffer of
	// a megabyte is copied into one twice as large; much more costs page
	// faults, at thousands of lines a second.
	size := 2
	for _, l := range lines {
		size += 92 + len(r.sources[l.src].watcher) + len(l.Data)
	}
	b := make([]byte, 0, size)
	b = append(b, '[')
	for i, l := range lines {
		if i > 0 {
			b = append(b, ", "...)
		}
		w := r.sources[l.src].watcher
		stream := l.Stream.String()
		if w == "" {
			stream = "log"
		}
		b = append(b, `{"time": `...)
		b = pyjson.AppendFloat(b, float64(l.Time.UnixMicro())/1e6)
		b = append(b, `, "watcher": `...)
		b = pyjson.AppendString(b, w)
		b = append(b, `, "pid": `...)
		b = strconv.AppendInt(b, int64(l.Pid), 10)
		b = append(b, `, "stream": "`...)
		b = append(b, stream...)
		b = append(b, `", "data": `...)
		// Data is shared and never modified: no copy is needed to read
		// it as a string.
		b = pyjson.AppendString(b, unsafe.String(unsafe.SliceData(l.Data), len(l.Data)))
		b = append(b, '}')
	}
	return append(b, ']')
}
