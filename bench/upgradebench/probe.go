package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

// probeTimeout bounds one knock at an endpoint; a knock that takes longer
// is tried again.
const probeTimeout = 2 * time.Second

// probe is one endpoint's check that it answers: a fresh connection each
// time, since an upgrade ends the old image's connections.
type probe struct {
	name string
	try  func() error
}

func probes(c *config) []probe {
	return []probe{
		{"control", func() error { return controlCall(c.control) }},
		{"pubsub", func() error { return zmtpGreeting(c.pubsub) }},
		{"console", func() error { return httpGet(&http.Client{Timeout: probeTimeout}, c.consoleURL) }},
	}
}

// controlCall connects to the control endpoint and runs list.
func controlCall(endpoint string) error {
	cl, err := control.Dial(endpoint, probeTimeout)
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
	defer cancel()
	_, err = cl.Call(ctx, "list", nil)
	return err
}

// zmtpGreeting connects to the event endpoint and reads the first 10 bytes
// of its ZMTP greeting (the signature), which only a serving image sends:
// the listening socket itself takes connections into its queue throughout
// the hand-over.
func zmtpGreeting(endpoint string) error {
	addr, ok := strings.CutPrefix(endpoint, "tcp://")
	if !ok {
		return fmt.Errorf("pubsub endpoint %s: want tcp://", endpoint)
	}
	nc, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(probeTimeout))
	// Our own greeting, ZMTP 3.0 with the NULL mechanism, as a SUB sends.
	greeting := make([]byte, 64)
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	if _, err := nc.Write(greeting); err != nil {
		return err
	}
	sig := make([]byte, 10)
	if _, err := io.ReadFull(nc, sig); err != nil {
		return err
	}
	if sig[0] != 0xff || sig[9] != 0x7f {
		return fmt.Errorf("pubsub endpoint %s: not a ZMTP greeting: % x", endpoint, sig)
	}
	return nil
}

func httpGet(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// floor times each probe against an arbiter that is not upgrading: what an
// answer costs at all.
func floor(ps []probe, n int) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	for range n {
		for _, p := range ps {
			start := time.Now()
			if err := p.try(); err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			out[p.name] = append(out[p.name], time.Since(start))
		}
	}
	return out, nil
}

// answeredAfterExec knocks at p until an answer comes from the new image:
// one asked for after /proc/PID/exe became newIno (the old image is gone
// from then on). It returns the time from start to that answer. exited is
// closed if the arbiter exits meanwhile.
func answeredAfterExec(p probe, pid int, newIno uint64, start, deadline time.Time, exited <-chan struct{}) (time.Duration, error) {
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return 0, fmt.Errorf("%s: the arbiter exited %v after the signal", p.name, time.Since(start).Round(time.Millisecond))
		default:
		}
		if exeInode(pid) != newIno {
			// Not exec'd yet: the old image may still answer, which
			// says nothing of the hand-over. Look again shortly.
			time.Sleep(200 * time.Microsecond)
			continue
		}
		if last = p.try(); last == nil {
			return time.Since(start), nil
		}
	}
	if exeInode(pid) != newIno {
		return 0, fmt.Errorf("%s: the arbiter had not exec'd the new binary %v after the signal", p.name, time.Since(start).Round(time.Millisecond))
	}
	return 0, fmt.Errorf("%s: no answer from the new image: %w", p.name, last)
}

// load is clients requesting the HTTP watcher over and over, each on a new
// connection (through the listening socket the upgrade keeps); it counts
// failures and the slowest request of each round.
type load struct {
	url        string
	ok, failed atomic.Int64
	worst      atomic.Int64 // nanoseconds, since the last reset
	mu         sync.Mutex
	firstErr   string
	stopc      chan struct{}
	wg         sync.WaitGroup
}

func startLoad(url string, clients int) *load {
	l := &load{url: url, stopc: make(chan struct{})}
	for range clients {
		l.wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				start := time.Now()
				err := httpGet(c, l.url)
				d := int64(time.Since(start))
				for w := l.worst.Load(); d > w && !l.worst.CompareAndSwap(w, d); w = l.worst.Load() {
				}
				if err == nil {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstErr == "" {
					l.firstErr = time.Now().Format("15:04:05.000 ") + err.Error()
				}
				l.mu.Unlock()
				// A refused connection fails at once: do not spin.
				time.Sleep(time.Duration(rand.N(5)+1) * time.Millisecond)
			}
		})
	}
	return l
}

// resetWorst returns the slowest request since the last reset and starts
// counting again.
func (l *load) resetWorst() time.Duration {
	return time.Duration(l.worst.Swap(0))
}

func (l *load) stop() {
	close(l.stopc)
	l.wg.Wait()
}
