package plugins

import (
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// statsdClient sends metrics as Circus's StatsdClient writes them:
// "<prefix>.<bucket>:<value>|<type>[|@<rate>]", one per UDP datagram.
type statsdClient struct {
	conn   *net.UDPConn
	prefix string
	rate   float64
	tag    string // "|@<rate>" when rate is not 1, as Python's "%s" writes it
}

// newStatsd resolves the statsd address once, preferring IPv4 as Circus's
// AF_INET socket does, so that a send is one write.
func newStatsd(s config.Statsd) (*statsdClient, error) {
	addr, err := net.ResolveUDPAddr("udp", net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	if err != nil {
		return nil, &keyError{key: "host", err: err}
	}
	conn, err := net.DialUDP("udp", nil, addr)
	if err != nil {
		return nil, &keyError{key: "host", err: err}
	}
	c := &statsdClient{conn: conn, prefix: s.Prefix(), rate: s.SampleRate}
	if s.SampleRate != 1 {
		c.tag = "|@" + string(pyjson.AppendFloat(nil, s.SampleRate))
	}
	return c, nil
}

// send writes one metric. sampled metrics (counters, timings) are sent
// with probability rate, as statsd's |@rate tag promises.
func (c *statsdClient) send(bucket, value string, sampled bool) {
	if sampled && c.rate < 1 && rand.Float64() >= c.rate {
		return
	}
	// Errors are ignored, as statsd clients do: nobody listening is no
	// failure of the arbiter's, and a refused send is reported by the
	// kernel only on the next one anyway.
	_, _ = c.conn.Write([]byte(c.prefix + "." + bucket + ":" + value + c.tag))
}

func (c *statsdClient) increment(bucket string)       { c.send(bucket, "1|c", true) }
func (c *statsdClient) gauge(bucket string, v string) { c.send(bucket, v+"|g", false) }
func (c *statsdClient) timing(bucket string, ms int64) {
	c.send(bucket, strconv.FormatInt(ms, 10)+"|ms", true)
}
func (c *statsdClient) close() { c.conn.Close() }

// statsdEmitter counts every watcher event: <name>.<event>:1|c.
type statsdEmitter struct {
	st  *statsdClient
	sub *pubsub.Subscription
}

func newStatsdEmitter(e env, s *config.StatsdEmitter) (plugin, error) {
	st, err := newStatsd(s.Statsd)
	if err != nil {
		return nil, err
	}
	return &statsdEmitter{st: st, sub: e.subscribe()}, nil
}

func (p *statsdEmitter) run(ctx context.Context) {
	defer p.st.close()
	var events <-chan pubsub.Event
	if p.sub != nil {
		defer p.sub.Close()
		events = p.sub.C()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			// What a Circus plugin subscribed to "watcher." receives, the
			// topic after that prefix being "<name>.<event>".
			if rest, ok := strings.CutPrefix(pubsub.Topic(ev), "watcher."); ok {
				p.st.increment(rest)
			}
		}
	}
}

// fullStats sends gauges of every watcher's workers every loop rate.
type fullStats struct {
	e    env
	spec *config.FullStats
	st   *statsdClient
}

func newFullStats(e env, s *config.FullStats) (plugin, error) {
	st, err := newStatsd(s.Statsd)
	if err != nil {
		return nil, err
	}
	return &fullStats{e: e, spec: s, st: st}, nil
}

func (p *fullStats) run(ctx context.Context) {
	defer p.st.close()
	every(ctx, p.spec.LoopRate, p.lookAfter)
}

func (p *fullStats) lookAfter(ctx context.Context) {
	r, err := p.e.cmds.call(ctx, "stats", nil)
	if err != nil {
		if ctx.Err() == nil {
			p.st.increment("_stats.error")
			p.e.log.Warn("stats failed", "err", err)
		}
		return
	}
	for _, w := range members(r["infos"]) {
		if strings.HasPrefix(w.key, "plugin:") {
			continue
		}
		var cpus, mems, memInfos []pyNum
		n := 0
		for _, proc := range members(w.value) {
			info := members(proc.value)
			if info == nil {
				continue
			}
			n++
			if v, ok := number(get(info, "cpu")); ok {
				cpus = append(cpus, v)
			}
			if v, ok := number(get(info, "mem")); ok {
				mems = append(mems, v)
			}
			if b, ok := humanBytes(get(info, "mem_info1")); ok {
				memInfos = append(memInfos, pyNum{v: float64(b)})
			}
		}
		prefix := "_stats." + w.key + "."
		p.st.gauge(prefix+"watchers_num", strconv.Itoa(n))
		if len(cpus) > 0 {
			p.st.gauge(prefix+"cpu_max", maxOf(cpus).String())
			p.st.gauge(prefix+"cpu_sum", sumOf(cpus).String())
		}
		if len(mems) > 0 {
			p.st.gauge(prefix+"mem_pct_max", maxOf(mems).String())
			p.st.gauge(prefix+"mem_pct_sum", sumOf(mems).String())
		}
		if len(memInfos) > 0 {
			p.st.gauge(prefix+"mem_max", maxOf(memInfos).String())
			p.st.gauge(prefix+"mem_sum", sumOf(memInfos).String())
		}
	}
}

// get returns the value of key among fs, nil if absent.
func get(fs []field, key string) []byte {
	for _, f := range fs {
		if f.key == key {
			return f.value
		}
	}
	return nil
}

// humanBytes reads a size string of a stats reply ("1.34M").
func humanBytes(raw []byte) (int64, bool) {
	s, ok := jsonString(raw)
	if !ok {
		return 0, false
	}
	b, err := config.HumanBytes(s)
	return b, err == nil
}

// every calls f every d until ctx is done, first after d, as Tornado's
// PeriodicCallback does. A call that takes longer than d delays the next
// rather than overlapping it.
func every(ctx context.Context, d time.Duration, f func(ctx context.Context)) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f(ctx)
		}
	}
}
