package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// watchDog stops workers that stopped sending heartbeats, as Circus's
// WatchDog.
type watchDog struct {
	e        env
	spec     *config.WatchDog
	conn     net.PacketConn
	sub      *pubsub.Subscription
	watchers *regexp.Regexp
	msg      *regexp.Regexp
	pidGroup int

	// Owned by run.
	pids map[int]*monitored
	// killed are the workers stopped and not yet gone from list: not to
	// be watched (and stopped) again while they drain.
	killed  map[int]bool
	unknown int // heartbeats from pids not watched, since the last loop
	lastBad string
}

// monitored is a worker being watched.
type monitored struct {
	watcher string // lower-cased, as list reports it
	last    time.Time
}

// heartbeatSize is what Circus reads of a datagram (recvfrom(1024)).
const heartbeatSize = 1024

func newWatchDog(e env, s *config.WatchDog) (plugin, error) {
	watchers, err := config.MatchRegexp(s.WatchersRegex)
	if err != nil {
		return nil, &keyError{key: "watchers_regex", err: err}
	}
	msg, err := config.MatchRegexp(s.MsgRegex)
	if err != nil {
		return nil, &keyError{key: "msg_regex", err: err}
	}
	conn, err := net.ListenPacket("udp", net.JoinHostPort(s.IP, strconv.Itoa(s.Port)))
	if err != nil {
		return nil, &keyError{key: "port", err: err}
	}
	e.log.Info("listening for heartbeats", "addr", conn.LocalAddr().String())
	return &watchDog{e: e, spec: s, conn: conn, sub: e.subscribe(), watchers: watchers, msg: msg,
		pidGroup: msg.SubexpIndex("pid"), pids: map[int]*monitored{}, killed: map[int]bool{}}, nil
}

func (p *watchDog) run(ctx context.Context) {
	beats := make(chan string, 256)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer p.conn.Close() // ends the reader
	wg.Go(func() { p.read(ctx, beats) })
	var events <-chan pubsub.Event
	if p.sub != nil {
		defer p.sub.Close()
		events = p.sub.C()
	}
	t := time.NewTicker(p.spec.LoopRate)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			p.event(ev)
		case pid := <-beats:
			p.heartbeat(pid)
		case <-t.C:
			p.lookAfter(ctx)
		}
	}
}

// read hands the pid of every heartbeat msg_regex matches to run.
func (p *watchDog) read(ctx context.Context, beats chan<- string) {
	buf := make([]byte, heartbeatSize)
	for {
		n, _, err := p.conn.ReadFrom(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue // an ICMP error reported on a UDP socket: not ours to mind
		}
		pid, ok := p.parse(buf[:n])
		if !ok {
			p.e.log.Debug("heartbeat not understood", "msg", string(buf[:n]))
			continue
		}
		select {
		case beats <- pid:
		case <-ctx.Done():
			return
		}
	}
}

// parse reads a heartbeat with msg_regex, as Python's re.match on the
// decoded datagram, whose $ also matches before a final newline.
func (p *watchDog) parse(b []byte) (string, bool) {
	if !utf8.Valid(b) {
		return "", false
	}
	s := string(b)
	m := p.msg.FindStringSubmatch(s)
	if m == nil && strings.HasSuffix(s, "\n") {
		m = p.msg.FindStringSubmatch(s[:len(s)-1])
	}
	if m == nil {
		return "", false
	}
	return m[p.pidGroup], true
}

func (p *watchDog) event(ev pubsub.Event) {
	name := strings.ToLower(ev.Watcher)
	if ev.Watcher == "" || !p.watchers.MatchString(name) {
		return
	}
	switch ev.Kind {
	case pubsub.Spawn:
		p.pids[ev.Pid] = &monitored{watcher: name, last: time.Now()}
		p.e.log.Debug("watching", "watcher", name, "pid", ev.Pid)
	case pubsub.Reap:
		delete(p.pids, ev.Pid)
		delete(p.killed, ev.Pid)
	}
}

func (p *watchDog) heartbeat(pid string) {
	n, err := strconv.Atoi(strings.TrimSpace(pid))
	if m := p.pids[n]; err == nil && m != nil {
		m.last = time.Now()
		return
	}
	if err == nil && p.killed[n] {
		return // woke up while it stops: too late
	}
	p.unknown++
	p.lastBad = pid
}

// lookAfter brings the watched workers up to date with the arbiter's, then
// stops each one silent for more than loop_rate × max_count.
func (p *watchDog) lookAfter(ctx context.Context) {
	if p.unknown > 0 {
		p.e.log.Warn("heartbeats from workers not watched", "count", p.unknown, "pid", p.lastBad)
		p.unknown = 0
	}
	p.discover(ctx)
	limit := time.Duration(p.spec.MaxCount) * p.spec.LoopRate
	now := time.Now()
	for pid, m := range p.pids {
		if silent := now.Sub(m.last); silent > limit {
			p.e.log.Warn("worker not responding; stopping it", "watcher", m.watcher, "pid", pid,
				"silent", silent.Round(time.Millisecond))
			props := map[string]any{"name": m.watcher, "pid": pid}
			if p.spec.StopSignal != 0 {
				props["signum"] = int(p.spec.StopSignal)
			}
			if p.spec.GracefulTimeout > 0 {
				props["graceful_timeout"] = p.spec.GracefulTimeout.Seconds()
			}
			p.e.cmds.cast(ctx, "kill", props)
			// The arbiter stops it within graceful_timeout; its
			// replacement is watched from its spawn.
			delete(p.pids, pid)
			p.killed[pid] = true
		}
	}
}

// discover lists the workers of the watched watchers: a worker not yet
// watched (one running before the plugin started, or whose spawn event was
// lost) is watched from now; one no longer listed is forgotten.
func (p *watchDog) discover(ctx context.Context) {
	r, err := p.e.cmds.call(ctx, "list", nil)
	if err != nil {
		if ctx.Err() == nil {
			p.e.log.Warn("list failed", "err", err)
		}
		return
	}
	listed := map[int]bool{}
	for _, name := range r.stringList("watchers") {
		if !p.watchers.MatchString(name) {
			continue
		}
		r, err := p.e.cmds.call(ctx, "list", map[string]any{"name": name})
		if err != nil {
			// Removed meanwhile, say: its workers are kept until the next
			// look or their reap.
			for pid, m := range p.pids {
				if m.watcher == name {
					listed[pid] = true
				}
			}
			continue
		}
		var pids []int
		_ = json.Unmarshal(r["pids"], &pids)
		for _, pid := range pids {
			listed[pid] = true
			if p.pids[pid] == nil && !p.killed[pid] {
				p.pids[pid] = &monitored{watcher: name, last: time.Now()}
				p.e.log.Debug("watching", "watcher", name, "pid", pid)
			}
		}
	}
	for pid := range p.pids {
		if !listed[pid] {
			delete(p.pids, pid)
		}
	}
	for pid := range p.killed {
		if !listed[pid] {
			delete(p.killed, pid)
		}
	}
}
