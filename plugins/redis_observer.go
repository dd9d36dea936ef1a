package plugins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
)

// redisObserved are the INFO fields Circus's RedisObserver sends, in its
// order.
var redisObserved = []string{"pubsub_channels", "connected_slaves", "lru_clock",
	"connected_clients", "keyspace_misses", "used_memory",
	"used_memory_peak", "total_commands_processed",
	"used_memory_rss", "total_connections_received",
	"pubsub_patterns", "used_cpu_sys", "used_cpu_sys_children",
	"blocked_clients", "used_cpu_user", "client_biggest_input_buf",
	"mem_fragmentation_ratio", "expired_keys", "evicted_keys",
	"client_longest_output_list", "uptime_in_seconds",
	"keyspace_hits"}

// maxInfo bounds the INFO answer read: a few kilobytes in practice.
const maxInfo = 1 << 20

// redisObserver sends redis's INFO to statsd every loop rate, as Circus's
// RedisObserver; it speaks RESP itself, which INFO needs little of.
type redisObserver struct {
	e    env
	spec *config.RedisObserver
	addr config.RedisAddr
	st   *statsdClient
}

func newRedisObserver(e env, s *config.RedisObserver) (plugin, error) {
	addr, err := config.ParseRedisURL(s.RedisURL)
	if err != nil {
		return nil, &keyError{key: "redis_url", err: err}
	}
	st, err := newStatsd(s.Statsd)
	if err != nil {
		return nil, err
	}
	return &redisObserver{e: e, spec: s, addr: addr, st: st}, nil
}

func (p *redisObserver) run(ctx context.Context) {
	defer p.st.close()
	every(ctx, p.spec.LoopRate, p.lookAfter)
}

func (p *redisObserver) lookAfter(ctx context.Context) {
	info, err := redisInfo(ctx, p.addr, p.spec.Timeout)
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		p.e.log.Warn("redis INFO failed", "url", p.spec.RedisURL, "err", err)
		p.st.increment("redis_stats.error")
		if p.spec.RestartOnTimeout != "" {
			p.e.log.Warn("restarting", "watcher", p.spec.RestartOnTimeout)
			p.e.cmds.cast(ctx, "restart", map[string]any{"name": p.spec.RestartOnTimeout, "match": "simple"})
			p.st.increment("redis_stats.restart_on_error")
		}
		return
	}
	for _, k := range redisObserved {
		// Fields newer servers renamed are left out (Circus's loop would
		// raise on the first).
		if v, ok := info[k]; ok {
			p.st.gauge("redis_stats."+k, redisValue(v))
		}
	}
}

// redisValue writes an INFO value as redis-py reads it and Python prints
// it: a number with a '.' as a float, another as an int, else as written.
func redisValue(v string) string {
	if strings.Contains(v, ".") {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return string(pyjson.AppendFloat(nil, f))
		}
		return v
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return strconv.FormatInt(n, 10)
	}
	return v
}

// redisInfo sends INFO (after AUTH, when the URL has a password) and
// returns its key:value lines, all within timeout.
func redisInfo(ctx context.Context, addr config.RedisAddr, timeout time.Duration) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, addr.Network, addr.Address)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	// Close at once on cancel too, not only at the deadline.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	rd := bufio.NewReader(conn)
	if addr.Password != "" {
		auth := []string{"AUTH", addr.Password}
		if addr.Username != "" {
			auth = []string{"AUTH", addr.Username, addr.Password}
		}
		if _, err := conn.Write(respCommand(auth...)); err != nil {
			return nil, err
		}
		if _, err := readRESP(rd); err != nil {
			return nil, fmt.Errorf("AUTH: %w", err)
		}
	}
	if _, err := conn.Write(respCommand("INFO")); err != nil {
		return nil, err
	}
	body, err := readRESP(rd)
	if err != nil {
		return nil, fmt.Errorf("INFO: %w", err)
	}
	info := map[string]string{}
	for _, line := range strings.Split(body, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			info[k] = v
		}
	}
	return info, nil
}

// respCommand encodes a command as a RESP array of bulk strings.
func respCommand(args ...string) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, "$"+strconv.Itoa(len(a))+"\r\n"+a+"\r\n"...)
	}
	return b
}

// readRESP reads one reply: a simple string, an integer or a bulk string,
// returned as text; an error reply is an error.
func readRESP(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < -1 || n > maxInfo {
			return "", fmt.Errorf("bad bulk length %q", line)
		}
		if n < 0 {
			return "", errors.New("null reply")
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
