package stats

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
)

// Sender is where the publisher's messages go: two frames, topic and JSON
// body. pubsub's Sink is one. Send must not block; it owns body once
// called (the publisher never reuses it).
type Sender interface {
	Send(topic string, body []byte)
}

// Publisher samples a [Source] every interval and sends Circus's stats
// topics to a [Sender] (see the package documentation).
type Publisher struct {
	// Immutable after New.
	src      Source
	out      Sender
	interval time.Duration
	sampler  *Sampler

	last atomic.Pointer[Snapshot]
}

// New returns a Publisher of src's stats to out, every interval (Circus:
// 1s). It fails only if /proc cannot be read.
func New(src Source, out Sender, interval time.Duration) (*Publisher, error) {
	if interval <= 0 {
		return nil, fmt.Errorf("stats: interval %s is not positive", interval)
	}
	s, err := NewSampler()
	if err != nil {
		return nil, err
	}
	return &Publisher{src: src, out: out, interval: interval, sampler: s}, nil
}

// Sampler returns the publisher's Sampler, for the stats and dstats
// commands: sampling through it keeps one cpu baseline per process.
func (p *Publisher) Sampler() *Sampler { return p.sampler }

// Snapshot returns the last published sample (without children), or nil
// before the first. It is safe to call concurrently with Run.
func (p *Publisher) Snapshot() *Snapshot { return p.last.Load() }

// Run publishes until ctx is done, then returns nil. It samples once at
// once, to set the cpu baselines, and publishes on each tick of a
// time.Ticker after that; a tick whose Source does not answer within the
// interval is skipped. Run starts no goroutine. Call it once.
func (p *Publisher) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval)
	defer t.Stop()
	p.collect(ctx) // baseline: a first sample's cpu is always 0.0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if snap := p.collect(ctx); snap != nil {
				p.last.Store(snap)
				p.publish(snap)
			}
		}
	}
}

func (p *Publisher) collect(ctx context.Context) *Snapshot {
	ctx, cancel := context.WithTimeout(ctx, p.interval)
	defer cancel()
	snap, err := p.sampler.Collect(ctx, p.src, false)
	if err != nil {
		return nil
	}
	return snap
}

// publish sends one snapshot's messages: per watcher, each worker then the
// aggregate; the arbiter as "circus"; the sockets, if there are any.
func (p *Publisher) publish(snap *Snapshot) {
	for _, w := range snap.Watchers {
		name := strings.ToLower(w.Name)
		for i := range w.Procs {
			p.out.Send("stat."+name+"."+strconv.Itoa(w.Procs[i].Pid), streamJSON(nil, &w.Procs[i], ""))
		}
		p.out.Send("stat."+name, aggregateJSON(nil, w.Procs))
	}
	var circus []Info
	if snap.Arbiter.Pid != 0 {
		circus = []Info{snap.Arbiter}
		p.out.Send("stat.circus."+strconv.Itoa(snap.Arbiter.Pid), streamJSON(nil, &snap.Arbiter, "circusd"))
	}
	p.out.Send("stat.circus", aggregateJSON(nil, circus))
	if len(snap.Sockets) == 0 {
		return
	}
	total := newObject(nil)
	total.key("addresses")
	total.b = append(total.b, '[')
	reads := 0
	for i, s := range snap.Sockets {
		o := newObject(nil)
		o.int("fd", s.FD)
		o.int("subtopic", s.FD)
		o.int("reads", s.Reads)
		o.str("address", s.Address)
		p.out.Send("stat.sockets."+strconv.Itoa(s.FD), o.end())
		if i > 0 {
			total.b = append(total.b, ", "...)
		}
		total.b = pyjson.AppendString(total.b, s.Address)
		reads += s.Reads
	}
	total.b = append(total.b, ']')
	total.int("reads", reads)
	p.out.Send("stat.sockets", total.end())
}

// streamJSON writes in as circusd-stats publishes it: Circus's get_info
// without children (always []) and without "started" and "wid", then
// "subtopic" (the pid) and "name" (null for a worker).
func streamJSON(buf []byte, in *Info, name string) []byte {
	c := *in
	c.Children, c.Started, c.Wid = nil, time.Time{}, 0
	o := c.appendJSON(buf)
	o.int("subtopic", in.Pid)
	if name == "" {
		o.null("name")
	} else {
		o.str("name", name)
	}
	return o.end()
}

// aggregateJSON writes Circus's per-watcher aggregate: {"pid": [pids],
// "cpu": mean, "mem": sum, "age": max}. As in Circus, a watcher without
// workers gets "cpu": 0.0, "mem": 0 (Python's sum of nothing is an int)
// and "age": "N/A"; an unreadable cpu or mem in any worker makes the
// aggregate "N/A".
func aggregateJSON(buf []byte, infos []Info) []byte {
	o := newObject(buf)
	o.key("pid")
	o.b = append(o.b, '[')
	var cpu, mem, age float64
	var cpuNA, memNA bool
	ages := 0
	for i := range infos {
		in := &infos[i]
		if i > 0 {
			o.b = append(o.b, ", "...)
		}
		o.b = strconv.AppendInt(o.b, int64(in.Pid), 10)
		if in.na&naCPU != 0 {
			cpuNA = true
		} else {
			cpu += in.CPU
			if ages == 0 || in.Age > age {
				age = in.Age
			}
			ages++
		}
		if in.na&naMem != 0 {
			memNA = true
		} else {
			mem += in.Mem
		}
	}
	o.b = append(o.b, ']')
	switch {
	case cpuNA:
		o.na("cpu")
	case len(infos) == 0:
		o.float("cpu", 0)
	default:
		o.float("cpu", cpu/float64(len(infos)))
	}
	switch {
	case memNA:
		o.na("mem")
	case len(infos) == 0:
		o.int("mem", 0)
	default:
		o.float("mem", mem)
	}
	if ages == 0 {
		o.na("age")
	} else {
		o.float("age", age)
	}
	return o.end()
}
