package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// logsReply is the reply of Ringmaster's logs command.
type logsReply struct {
	Lines []struct {
		Time    float64 `json:"time"`
		Watcher string  `json:"watcher"`
		Pid     int     `json:"pid"`
		Stream  string  `json:"stream"`
		Data    string  `json:"data"`
	} `json:"lines"`
	After          map[string]uint64 `json:"after"`
	Dropped        map[string]uint64 `json:"dropped"`
	AfterArbiter   *uint64           `json:"after_arbiter"`
	DroppedArbiter uint64            `json:"dropped_arbiter"`
	More           bool              `json:"more"`
}

// logsPoll is how often logs --follow asks for new lines. Each request
// costs the arbiter about the same whatever it returns, so that polling
// less often costs less; a reply full of lines ("more") is followed at
// once by the next request.
var logsPoll = 500 * time.Millisecond

// logsTime is how a line's time prints: local, to the millisecond.
const logsTime = "2006-01-02 15:04:05.000"

// logsProps are the first request's properties for a's command line.
func logsProps(a *parsed) map[string]any {
	props := map[string]any{}
	if len(a.args) > 0 {
		props["names"] = a.args
	}
	if a.on("arbiter") {
		props["arbiter"] = true
	}
	if v, ok := a.set["since"]; ok {
		d, _ := time.ParseDuration(v)
		props["since"] = d.Seconds()
	}
	if v, ok := a.set["lines"]; ok {
		n, _ := strconv.Atoi(v)
		props["lines"] = n
	}
	return props
}

// logs prints the recent lines of every watcher (or those named) and of
// the arbiter, in time order, and with --follow what comes after, until
// ctx is done.
func logs(ctx context.Context, g globals, e environ, a *parsed) error {
	endpoint := g.controlEndpoint(e)
	cl, err := control.Dial(endpoint, g.timeout)
	if err != nil {
		return fmt.Errorf("%w (endpoint %s)", err, endpoint)
	}
	defer cl.Close()
	out := bufio.NewWriter(e.stdout)
	defer out.Flush()
	props := logsProps(a)
	follow := a.on("follow")
	poll := time.NewTicker(logsPoll)
	defer poll.Stop()
	for {
		raw, err := pollCall(ctx, g, cl, endpoint, "logs", props)
		if err != nil {
			return err
		}
		var r logsReply
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("unexpected reply: %v", err)
		}
		if g.json {
			s, err := renderJSON(raw, g.prettify)
			if err != nil {
				return err
			}
			fmt.Fprintln(out, s)
		} else {
			printLogs(out, &r)
		}
		// A reader that stops reading (a pager, a stuck pipe) blocks
		// here, and only itself: the arbiter keeps no line for it.
		if err := out.Flush(); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		props = nextLogsProps(props, &r)
		if r.More {
			continue
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-poll.C:
		}
	}
}

// nextLogsProps asks for what came after r: the same sources, from r's
// cursor.
func nextLogsProps(props map[string]any, r *logsReply) map[string]any {
	next := map[string]any{"after": r.After}
	if r.After == nil {
		next["after"] = map[string]uint64{}
	}
	for _, k := range []string{"names", "arbiter"} {
		if v, ok := props[k]; ok {
			next[k] = v
		}
	}
	if r.AfterArbiter != nil {
		next["after_arbiter"] = *r.AfterArbiter
	}
	return next
}

// printLogs prints r's lines as TIME WATCHER[PID] STREAM: LINE, the
// arbiter's own as arbiter[PID] log: LINE, after a note of the lines this
// reader missed, if any.
func printLogs(w *bufio.Writer, r *logsReply) {
	for _, name := range slices.Sorted(maps.Keys(r.Dropped)) {
		fmt.Fprintf(w, "-- %s: %d lines dropped: this reader fell behind --\n", name, r.Dropped[name])
	}
	if r.DroppedArbiter > 0 {
		fmt.Fprintf(w, "-- arbiter: %d lines dropped: this reader fell behind --\n", r.DroppedArbiter)
	}
	// Appended rather than through fmt: a follower of busy watchers
	// prints thousands of lines a second.
	var b []byte
	for _, l := range r.Lines {
		name := l.Watcher
		if name == "" {
			name = "arbiter"
		}
		b = time.UnixMicro(int64(l.Time*1e6)).AppendFormat(b[:0], logsTime)
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(l.Pid), 10)
		b = append(b, "] "...)
		b = append(b, l.Stream...)
		b = append(b, ": "...)
		b = append(b, l.Data...)
		w.Write(append(b, '\n'))
	}
}

const logsHelp = `Prints the recent output of every watcher's processes and the arbiter's own
log lines, merged in time order, as journalctl shows a machine's log:

  2026-12-07 10:02:21.123 web[1234] stderr: boom: cannot open db
  2026-12-07 10:02:21.125 arbiter[77] log: level=INFO msg=reaped watcher=web pid=1234 exit_code=1

With WATCHER names, only their processes' lines (and the arbiter's with
--arbiter). The arbiter keeps the last 64 KiB of each process, and of the
last 8 that exited, whatever the watcher's stream, so the last words of a
crashed worker, or of a watcher stopped for flapping, are there. With
--follow (-f) it prints new lines as they come; a reader that falls behind
by more than the arbiter keeps is told how many lines it missed, and never
slows the arbiter or a worker. Ringmaster's own: Circus has no logs.`
