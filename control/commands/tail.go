package commands

import (
	"context"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// cmdTail is Ringmaster's own: the recent output of a watcher's workers,
// from memory, so that it needs no log file. Properties: name; lines (the
// last N; default 10, or all kept when since is given); since (only lines
// after this seq, for a client that follows); pid; stream ("stdout" or
// "stderr"). The reply's lines carry seq, pid, stream, time and data (the
// line without its newline; bytes that are not UTF-8 become U+FFFD), and
// last is the seq to pass as since next time.
func cmdTail(t *Table, req control.Request) (job, *control.Error) {
	w, e := t.watcher(req)
	if e != nil {
		return job{}, e
	}
	var q logs.Query
	since, e := req.IntOr("since", 0)
	if e != nil {
		return job{}, e
	}
	if since < 0 {
		return job{}, control.Errorf(control.MessageError, "since: %d is negative", since)
	}
	q.Since = uint64(since)
	def := int64(10)
	if req.Has("since") {
		def = 0
	}
	n, e := req.IntOr("lines", def)
	if e != nil {
		return job{}, e
	}
	if n < 0 {
		return job{}, control.Errorf(control.MessageError, "lines: %d is negative", n)
	}
	q.Lines = int(n)
	pid, e := req.IntOr("pid", 0)
	if e != nil {
		return job{}, e
	}
	q.Pid = int(pid)
	stream, e := req.StringOr("stream", "")
	if e != nil {
		return job{}, e
	}
	switch stream {
	case "":
	case "stdout", "stderr":
		s := logs.Stdout
		if stream == "stderr" {
			s = logs.Stderr
		}
		q.Stream = &s
	default:
		return job{}, control.Errorf(control.MessageError, "stream: %q is not stdout or stderr", stream)
	}
	return now(func(context.Context) control.Reply {
		lines, last := w.Output().Tail(q)
		out := make([]control.Object, len(lines))
		for i, l := range lines {
			out[i] = control.Object{
				{Key: "seq", Value: int64(l.Seq)},
				{Key: "pid", Value: l.Pid},
				{Key: "stream", Value: l.Stream.String()},
				{Key: "time", Value: float64(l.Time.UnixMicro()) / 1e6},
				{Key: "data", Value: string(l.Data)},
			}
		}
		return control.OK(field("lines", out), field("last", int64(last)))
	})
}
