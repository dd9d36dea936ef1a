package web

import (
	"encoding/json"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

// The JSON shapes the page reads. Field names are the wire format: the
// package documentation lists them, and web/assets/app.js depends on them.

type eventJSON struct {
	Seq      uint64  `json:"seq"`
	Kind     string  `json:"kind"`
	Watcher  string  `json:"watcher"`
	Pid      int     `json:"pid,omitempty"`
	Wid      int     `json:"wid,omitempty"`
	Time     float64 `json:"time"`
	ExitCode *int    `json:"exit_code,omitempty"` // present on reap and orphan, 0 included
	Signal   int     `json:"signal,omitempty"`
	Reason   string  `json:"reason,omitempty"`
	Hook     string  `json:"hook,omitempty"`
	// Command, Peer and Status are a command event's (the audit trail).
	Command string `json:"command,omitempty"`
	Peer    string `json:"peer,omitempty"`
	Status  string `json:"status,omitempty"`
	// From and To are a scale event's sizes (numbers), or an upgrade's
	// versions before and after (strings), as on the ZeroMQ wire.
	From any `json:"from,omitempty"`
	To   any `json:"to,omitempty"`
}

func encodeEvent(ev pubsub.Event) json.RawMessage {
	e := eventJSON{
		Seq: ev.Seq, Kind: ev.Kind.String(), Watcher: ev.Watcher, Pid: ev.Pid, Wid: ev.Wid,
		Time: epoch(ev.Time), Signal: ev.Signal, Reason: ev.Reason, Hook: ev.Hook,
	}
	if a := ev.Audit; a != nil {
		e.Command, e.Peer, e.Status = a.Command, a.Peer, a.Status
		if e.Reason == "" {
			e.Reason = a.Reason
		}
	}
	if ev.Kind == pubsub.Reap || ev.Kind == pubsub.Orphan {
		code := ev.ExitCode
		e.ExitCode = &code
	}
	switch ev.Kind {
	case pubsub.Scale:
		e.From, e.To = ev.From, ev.To
	case pubsub.Upgrade:
		e.From, e.To = ev.Versions[0], ev.Versions[1]
	}
	return mustJSON(e)
}

type workerJSON struct {
	Pid      int     `json:"pid"`
	Wid      int     `json:"wid"`
	Started  float64 `json:"started"`
	Stopping bool    `json:"stopping"`
	Ready    bool    `json:"ready"`
	Status   string  `json:"status,omitempty"`
	Restarts uint64  `json:"restarts,omitempty"` // of its slot
}

type socketJSON struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

type watcherJSON struct {
	Name         string       `json:"name"`
	State        string       `json:"state"`
	NumProcesses int          `json:"numprocesses"`
	Cmd          string       `json:"cmd"`
	Sockets      []socketJSON `json:"sockets"`
	Workers      []workerJSON `json:"workers"`
	// Detail is what the watcher does or waits for beyond its state
	// ("flapping, retry 1 of 5 in 6.2s"); RetryAt, when it next tries
	// (epoch seconds), so that the page can count down.
	Detail  string  `json:"detail,omitempty"`
	RetryAt float64 `json:"retry_at,omitempty"`
	// Autoscale is an autoscaled watcher's bounds and the connections
	// waiting in its sockets' accept queues at the last sample.
	Autoscale *scaleJSON `json:"autoscale,omitempty"`
	// Since is when it last became active (epoch seconds), for its
	// uptime; Restarts the worker deaths it counted, by reason, and
	// LastExit the last of them (see arbiter.Status).
	Since    float64           `json:"since,omitempty"`
	Restarts map[string]uint64 `json:"restarts,omitempty"`
	LastExit *exitJSON         `json:"last_exit,omitempty"`
}

type exitJSON struct {
	Pid        int     `json:"pid"`
	Wid        int     `json:"wid"`
	Code       int     `json:"code"`
	SignalName string  `json:"signal_name,omitempty"`
	Expected   bool    `json:"expected"`
	Reason     string  `json:"reason"`
	Time       float64 `json:"time"`
}

type scaleJSON struct {
	Min     int `json:"min"`
	Max     int `json:"max"`
	Queue   int `json:"queue"`
	Backlog int `json:"backlog"`
}

// encodeWatcher renders w's status; cmd is its command line as configured.
func encodeWatcher(name, cmd string, st arbiter.Status) json.RawMessage {
	w := watcherJSON{
		Name: name, State: st.State.String(), NumProcesses: st.Target, Cmd: cmd,
		Sockets: make([]socketJSON, len(st.Sockets)), Workers: make([]workerJSON, len(st.Procs)),
		Detail: st.Detail, Since: epoch(st.Since), Restarts: st.Restarts,
	}
	if e := st.LastExit; e != nil {
		w.LastExit = &exitJSON{Pid: e.Pid, Wid: e.Wid, Code: e.Code, Expected: e.Expected, Reason: e.Reason, Time: epoch(e.Time)}
		if e.Signal != 0 {
			w.LastExit.SignalName = unix.SignalName(e.Signal)
		}
	}
	if !st.RetryAt.IsZero() {
		w.RetryAt = epoch(st.RetryAt)
	}
	if a := st.Autoscale; a != nil {
		w.Autoscale = &scaleJSON{Min: a.Min, Max: a.Max, Queue: a.Queue, Backlog: a.Backlog}
	}
	for i, s := range st.Sockets {
		w.Sockets[i] = socketJSON{Name: s.Name(), Address: s.Addr()}
	}
	for i, p := range st.Procs {
		w.Workers[i] = workerJSON{Pid: p.Pid, Wid: p.Wid, Started: epoch(p.Started), Stopping: p.Stopping, Ready: p.Ready, Status: p.Status, Restarts: p.Restarts}
	}
	return mustJSON(w)
}

type usageJSON struct {
	CPU float64 `json:"cpu"`
	RSS uint64  `json:"rss"`
}

type workerUsageJSON struct {
	CPU float64 `json:"cpu"`
	RSS uint64  `json:"rss"`
	Mem float64 `json:"mem"`
}

// watcherUsageJSON is a watcher's usage in a sample, with its number of
// workers and, when autoscaled, the connections waiting in its queues:
// the page draws both over time.
type watcherUsageJSON struct {
	CPU     float64 `json:"cpu"`
	RSS     uint64  `json:"rss"`
	Workers int     `json:"workers"`
	Queue   *int    `json:"queue,omitempty"`
}

type sampleJSON struct {
	Time     float64                     `json:"time"`
	Arbiter  usageJSON                   `json:"arbiter"`
	Watchers map[string]watcherUsageJSON `json:"watchers"`
	Workers  map[string]workerUsageJSON  `json:"workers"`
}

// encodeSample renders one stats pass: usage per worker, summed per
// watcher, and the arbiter's own; queues are the autoscaled watchers'
// queues read in the same pass.
func encodeSample(s *stats.Snapshot, queues map[string]int) json.RawMessage {
	out := sampleJSON{
		Time:     epoch(s.Time),
		Arbiter:  usageJSON{CPU: s.Arbiter.CPU, RSS: s.Arbiter.RSS},
		Watchers: make(map[string]watcherUsageJSON, len(s.Watchers)),
		Workers:  map[string]workerUsageJSON{},
	}
	for _, w := range s.Watchers {
		sum := watcherUsageJSON{Workers: len(w.Procs)}
		if q, ok := queues[w.Name]; ok {
			sum.Queue = &q
		}
		for _, p := range w.Procs {
			sum.CPU += p.CPU
			sum.RSS += p.RSS
			out.Workers[strconv.Itoa(p.Pid)] = workerUsageJSON{CPU: p.CPU, RSS: p.RSS, Mem: p.Mem}
		}
		sum.CPU = float64(int(sum.CPU*10+0.5)) / 10
		out.Watchers[w.Name] = sum
	}
	return mustJSON(out)
}

// envelope is a message to the page: type, the stream's seq and the
// payload's members. Replies and resumed are not part of the stream and
// carry no seq.
func envelope(typ string, seq uint64, members ...any) []byte {
	b := make([]byte, 0, 128)
	b = append(b, `{"type":`...)
	b = strconv.AppendQuote(b, typ)
	if typ != "reply" && typ != "resumed" {
		b = append(b, `,"seq":`...)
		b = strconv.AppendUint(b, seq, 10)
	}
	for i := 0; i+1 < len(members); i += 2 {
		b = append(b, ',')
		b = strconv.AppendQuote(b, members[i].(string))
		b = append(b, ':')
		switch v := members[i+1].(type) {
		case json.RawMessage:
			b = append(b, v...)
		default:
			b = append(b, mustJSON(v)...)
		}
	}
	return append(b, '}')
}

// spliceSample turns a sample object into a stats message by putting type
// and seq in front of its members, as the page expects.
func spliceSample(seq uint64, sample json.RawMessage) []byte {
	b := envelope("stats", seq)
	b = b[:len(b)-1] // drop '}'
	b = append(b, ',')
	return append(b, sample[1:]...)
}

func epoch(t time.Time) float64 {
	if t.IsZero() {
		return 0
	}
	return float64(t.UnixMicro()) / 1e6
}

// mustJSON marshals values whose types cannot fail to marshal.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("web: " + err.Error())
	}
	return b
}

// rawList joins raw JSON values into an array.
func rawList(items []json.RawMessage) json.RawMessage {
	n := 2
	for _, it := range items {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	return append(b, ']')
}
