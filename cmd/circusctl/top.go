package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// sample is what top keeps of one worker's latest stat.<watcher>.<pid>.
type sample struct {
	cpu, mem, age float64
	seen          time.Time
}

// board is top's view, filled by the receiving goroutine and drawn once a
// second.
type board struct {
	mu sync.Mutex
	// guarded by mu
	procs   map[string]map[int]sample // watcher -> pid -> latest sample
	sockets map[string]float64        // address -> reads
	last    time.Time                 // when anything last arrived
}

func (b *board) add(topic string, body []byte, now time.Time) {
	parts := strings.Split(topic, ".")
	if len(parts) < 2 || parts[0] != "stat" {
		return
	}
	var v map[string]any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.last = now
	if parts[1] == "sockets" {
		if len(parts) == 3 {
			if addr, ok := v["address"].(string); ok {
				b.sockets[addr] = num(v["reads"])
			}
		}
		return
	}
	if len(parts) < 3 {
		return // the aggregate: top computes its own from the workers
	}
	pid, err := strconv.Atoi(parts[len(parts)-1])
	if err != nil {
		return
	}
	name := strings.Join(parts[1:len(parts)-1], ".")
	if b.procs[name] == nil {
		b.procs[name] = map[int]sample{}
	}
	b.procs[name][pid] = sample{cpu: num(v["cpu"]), mem: num(v["mem"]), age: num(v["age"]), seen: now}
}

// num reads a stats field, which is "N/A" where the arbiter could not read it.
func num(v any) float64 {
	f, _ := v.(float64)
	return f
}

// draw renders the board, dropping workers silent for longer than timeout
// (they are gone), as circus-top does.
func (b *board) draw(w io.Writer, endpoint string, timeout time.Duration, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var s strings.Builder
	fmt.Fprintf(&s, "circusctl top  %s  %s\n", endpoint, now.Format("2006-01-02 15:04:05"))
	if b.last.IsZero() {
		s.WriteString("\nwaiting for stats (is statsd = true in the arbiter's [circus] section?)\n")
	}
	names := make([]string, 0, len(b.procs))
	for name, procs := range b.procs {
		for pid, p := range procs {
			if now.Sub(p.seen) > timeout {
				delete(procs, pid)
			}
		}
		if len(procs) == 0 {
			delete(b.procs, name)
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		type row struct {
			pid int
			sample
		}
		var rows []row
		var cpu, mem, age float64
		for pid, p := range b.procs[name] {
			rows = append(rows, row{pid, p})
			cpu += p.cpu
			mem += p.mem
			age = max(age, p.age)
		}
		slices.SortFunc(rows, func(x, y row) int {
			if x.cpu != y.cpu {
				if x.cpu > y.cpu {
					return -1
				}
				return 1
			}
			return x.pid - y.pid
		})
		fmt.Fprintf(&s, "\n%-24s %8s %7s %7s %10s\n", name, "PID", "CPU%", "MEM%", "AGE")
		for _, r := range rows[:min(len(rows), 10)] {
			fmt.Fprintf(&s, "%-24s %8d %7.1f %7.1f %10s\n", "", r.pid, r.cpu, r.mem, age2str(r.age))
		}
		if len(rows) > 10 {
			fmt.Fprintf(&s, "%-24s %8s\n", "", fmt.Sprintf("+%d", len(rows)-10))
		}
		fmt.Fprintf(&s, "%-24s %8s %7.1f %7.1f %10s  (avg cpu, sum mem, oldest)\n", "", "all", cpu/float64(len(rows)), mem, age2str(age))
	}
	if len(b.sockets) > 0 {
		addrs := make([]string, 0, len(b.sockets))
		for a := range b.sockets {
			addrs = append(addrs, a)
		}
		slices.Sort(addrs)
		s.WriteString("\nsockets\n")
		for _, a := range addrs {
			fmt.Fprintf(&s, "  %-40s reads %.0f\n", a, b.sockets[a])
		}
	}
	io.WriteString(w, s.String())
}

// noStats explains a stats endpoint that cannot be reached: the arbiter
// publishes stats only when told to, unlike its events, so the usual cause
// is a setting, which is what the user needs to read first.
func noStats(endpoint string, err error) error {
	cause := err
	var op *net.OpError
	if errors.As(err, &op) {
		cause = op.Err // "connect: connection refused", without zmq4's wrapping
	}
	return fmt.Errorf("no stats stream at %s (%v):\n"+
		"the arbiter publishes stats only with statsd = true in its [circus] section\n"+
		"(stats_endpoint, tcp://127.0.0.1:5557 by default, moves them: give top the\n"+
		"same address with --endpoint); set it and restart the arbiter", endpoint, cause)
}

func age2str(sec float64) string {
	return (time.Duration(sec) * time.Second).String()
}

// top shows live per-watcher and per-worker cpu, memory and age from the
// stats stream, repainting every second, until ctx is done.
func top(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("top", flag.ContinueOnError)
	fs.SetOutput(stderr)
	timeout := fs.Duration("process-timeout", 3*time.Second, "drop a worker not reported for this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	endpoint := endpointOr(g.endpoint, defaultStats)
	c, err := zmqpub.Dial(ctx, endpoint, "stat.")
	if err != nil {
		return noStats(endpoint, err)
	}
	defer c.Close()
	b := &board{procs: map[string]map[int]sample{}, sockets: map[string]float64{}}
	recvDone := make(chan error, 1)
	go func() {
		for {
			topic, body, err := c.Recv()
			if err != nil {
				recvDone <- err
				return
			}
			b.add(topic, body, time.Now())
		}
	}()
	tty := false
	if f, ok := stdout.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			c.Close()
			<-recvDone
			return ctx.Err()
		case err := <-recvDone:
			return fmt.Errorf("top %s: %w", endpoint, err)
		case now := <-tick.C:
			if tty {
				io.WriteString(stdout, "\x1b[H\x1b[2J")
			} else {
				io.WriteString(stdout, "\n")
			}
			b.draw(stdout, endpoint, *timeout, now)
		}
	}
}
