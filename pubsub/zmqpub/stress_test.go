package zmqpub

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
	"github.com/go-zeromq/zmq4/security/null"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// stuckSub completes the ZMTP handshake as a SUB, subscribes to everything,
// and then never reads. Its receive buffer is made small so that the kernel
// absorbs little.
func stuckSub(t testing.TB, endpoint string) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	zc, err := zmq4.Open(nc, null.Security(), zmq4.Sub, nil, false, nil)
	if err != nil {
		t.Fatalf("stuck SUB handshake: %v", err)
	}
	if err := zc.SendMsg(zmq4.NewMsg([]byte{1})); err != nil {
		t.Fatalf("stuck SUB subscribe: %v", err)
	}
	nc.SetDeadline(time.Time{})
	return nc
}

// countingSub receives on a zmq4 SUB in a goroutine, checks that the
// sequence number in each body is the previous plus one, and counts.
type countingSub struct {
	n    atomic.Int64
	err  atomic.Pointer[error]
	done chan struct{}
}

func startCounting(t testing.TB, sub zmq4.Socket) *countingSub {
	c := &countingSub{done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			m, err := sub.Recv()
			if err != nil {
				return // the SUB was closed
			}
			seq, _ := strconv.ParseInt(strings.SplitN(string(m.Frames[1]), " ", 2)[0], 10, 64)
			if want := c.n.Load() + 1; seq != want {
				err := fmt.Errorf("got seq %d, want %d", seq, want)
				c.err.CompareAndSwap(nil, &err)
			}
			c.n.Add(1)
		}
	}()
	t.Cleanup(func() { sub.Close(); <-c.done })
	return c
}

func (c *countingSub) check(t testing.TB, name string, want int64) {
	t.Helper()
	if p := c.err.Load(); p != nil {
		t.Errorf("%s: %v", name, *p)
	}
	if got := c.n.Load(); got != want {
		t.Errorf("%s received %d messages, want %d", name, got, want)
	}
}

// pyCounter is a libzmq SUB that prints how many messages it has after every
// 500 and checks their order.
const pyCounter = `import sys, zmq
ctx = zmq.Context()
s = ctx.socket(zmq.SUB)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.RCVTIMEO, 20000)
s.setsockopt(zmq.SUBSCRIBE, b"")
s.connect(sys.argv[1])
n, total = 0, int(sys.argv[2])
while n < total:
    topic, body = s.recv_multipart()
    n += 1
    seq = int(body.split(b" ", 1)[0])
    if seq != n:
        sys.exit("got seq %d, want %d" % (seq, n))
    if n % 500 == 0 or n == total:
        print(n, flush=True)
`

// startPyCounter returns a counter of what the libzmq SUB has received.
func startPyCounter(t *testing.T, endpoint string, total int) *atomic.Int64 {
	t.Helper()
	script := filepath.Join(t.TempDir(), "count.py")
	if err := os.WriteFile(script, []byte(pyCounter), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, systemPython, script, endpoint, strconv.Itoa(total))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			v, _ := strconv.ParseInt(sc.Text(), 10, 64)
			n.Store(v)
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cmd.Wait() })
	return &n
}

// One subscriber that never reads while 50,000 1 KiB messages go out: the
// others get all of them, its drops are counted, memory stays bounded and
// Send does not block.
func TestStuckSubscriber(t *testing.T) {
	t.Parallel()
	const total, batch = 50_000, 500
	s := listen(t, SinkOptions{Logger: testLogger(t)})
	stuckSub(t, s.Addr())
	fast := startCounting(t, goSub(t, s.Addr(), ""))
	subs := 2
	var py *atomic.Int64
	if pyzmq() {
		py = startPyCounter(t, s.Addr(), total)
		subs++
	}
	waitSubscribed(t, s, subs, 1)

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	pad := strings.Repeat("x", 1000)
	var maxSend time.Duration
	var slowSends int // over 1ms: descheduled on a busy 2-core box, not blocked
	for i := 1; i <= total; i++ {
		body := []byte(strconv.Itoa(i) + " " + pad)
		t0 := time.Now()
		s.Send("watcher.web.spawn", body)
		d := time.Since(t0)
		maxSend = max(maxSend, d)
		if d > time.Millisecond {
			slowSends++
		}
		if i%batch == 0 { // pace to the fast subscribers, not to the stuck one
			testproc.WaitFor(t, "fast subscribers to catch up", 20*time.Second, func() bool {
				return fast.n.Load() == int64(i) && (py == nil || py.Load() >= int64(i))
			})
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	fast.check(t, "Go SUB", total)
	if py != nil && py.Load() != total {
		t.Errorf("libzmq SUB received %d, want %d", py.Load(), total)
	}
	st := s.Stats()
	var stuckDropped uint64
	for _, p := range st.Peers {
		stuckDropped = max(stuckDropped, p.Dropped)
	}
	if st.Dropped == 0 || st.Dropped != stuckDropped {
		t.Errorf("Stats() = %+v, want drops, all on the stuck subscriber", st)
	}
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if growth > 32<<20 {
		t.Errorf("heap grew by %d MiB sending %d messages, want bounded by the queues", growth>>20, total)
	}
	t.Logf("sent %d x 1 KiB to %d subscribers: stuck one dropped %d, heap growth %d KiB, max Send %v, Sends over 1ms: %d",
		total, subs, st.Dropped, growth>>10, maxSend, slowSends)
}

// A subscriber that takes nothing for WriteTimeout is disconnected.
func TestWriteTimeoutDisconnects(t *testing.T) {
	t.Parallel()
	s := listen(t, SinkOptions{WriteTimeout: 200 * time.Millisecond, QueueSize: 10, Logger: testLogger(t)})
	stuck := stuckSub(t, s.Addr())
	waitSubscribed(t, s, 1, 1)
	body := make([]byte, 64<<10)
	testproc.WaitFor(t, "the stuck subscriber to be dropped", 20*time.Second, func() bool {
		s.Send("t", body)
		return s.Stats().Subscribers == 0
	})
	stuck.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, stuck); err != nil {
		t.Errorf("stuck connection ended with %v, want EOF", err)
	}
}

// Dozens of subscribers connect and disconnect while events flow; a steady
// subscriber misses nothing and the Sink ends with just it.
func TestChurningSubscribers(t *testing.T) {
	t.Parallel()
	s := listen(t, SinkOptions{Logger: testLogger(t)})
	steady := startCounting(t, goSub(t, s.Addr(), "watcher."))
	waitSubscribed(t, s, 1, 1)

	ctx, cancel := context.WithCancel(context.Background())
	var sent atomic.Int64
	var pub sync.WaitGroup
	pub.Go(func() {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				for range 10 {
					n := sent.Add(1)
					s.Send("watcher.web.reap", []byte(strconv.FormatInt(n, 10)+" {}"))
				}
			}
		}
	})
	var churn sync.WaitGroup
	for w := range 4 {
		churn.Go(func() {
			for i := range 12 {
				sub := zmq4.NewSub(context.Background(), zmq4.WithTimeout(5*time.Second))
				if err := sub.Dial(s.Addr()); err != nil {
					t.Errorf("churner %d.%d: Dial: %v", w, i, err)
					return
				}
				sub.SetOption(zmq4.OptionSubscribe, "watcher.web")
				if i%2 == 0 { // half of them wait for a message, half leave at once
					if _, err := sub.Recv(); err != nil {
						t.Errorf("churner %d.%d: Recv: %v", w, i, err)
					}
				}
				sub.Close()
			}
		})
	}
	if pyzmq() { // and libzmq peers, which close differently
		script := filepath.Join(t.TempDir(), "churn.py")
		os.WriteFile(script, []byte(pyChurn), 0o644)
		churn.Go(func() {
			out, err := exec.Command(systemPython, script, s.Addr(), "24").CombinedOutput()
			if err != nil {
				t.Errorf("python churner: %v\n%s", err, out)
			}
		})
	}
	churn.Wait()
	cancel()
	pub.Wait()
	total := sent.Load()
	testproc.WaitFor(t, "the steady subscriber to catch up", 10*time.Second, func() bool { return steady.n.Load() >= total })
	steady.check(t, "steady SUB", total)
	testproc.WaitFor(t, "churners to be gone", 10*time.Second, func() bool { return s.Stats().Subscribers == 1 })
	t.Logf("48 Go and (with pyzmq) 24 libzmq churning subscribers; steady subscriber got all %d messages", total)
}

// pyChurn connects, subscribes, waits for one message and closes, n times.
const pyChurn = `import sys, zmq
ctx = zmq.Context()
for i in range(int(sys.argv[2])):
    s = ctx.socket(zmq.SUB)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RCVTIMEO, 10000)
    s.setsockopt(zmq.SUBSCRIBE, b"watcher.web")
    s.connect(sys.argv[1])
    if i % 2 == 0:
        s.recv_multipart()
    s.close()
ctx.term()
`

// A client that connects and says nothing, one that sends garbage, and one
// that declares a 1 TiB frame do not delay a new subscriber, and each is
// disconnected.
func TestBadClientsDoNotDelayOthers(t *testing.T) {
	t.Parallel()
	const hs = 2 * time.Second
	s := listen(t, SinkOptions{HandshakeTimeout: hs, Logger: testLogger(t)})
	addr := strings.TrimPrefix(s.Addr(), "tcp://")
	dial := func() net.Conn {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	silent := dial()
	garbage := dial()
	garbage.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	huge := dial()
	greeting := make([]byte, 64)
	greeting[0], greeting[9], greeting[10] = 0xff, 0x7f, 3
	copy(greeting[12:], "NULL")
	huge.Write(append(greeting, 0x06, 0, 0, 1, 0, 0, 0, 0, 0)) // a command of 2^40 bytes

	start := time.Now()
	sub := goSub(t, s.Addr(), "")
	got := make(chan time.Duration, 1)
	go func() {
		if _, err := sub.Recv(); err == nil {
			got <- time.Since(start)
		}
		close(got)
	}()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var first time.Duration
wait:
	for {
		select {
		case d, ok := <-got:
			if !ok {
				t.Fatal("new subscriber's Recv failed")
			}
			first = d
			break wait
		case <-tick.C:
			s.Send("watcher.w.spawn", []byte("{}"))
		}
	}
	if first > hs/2 {
		t.Errorf("new subscriber's first message after %v, want well under the %v handshake timeout", first, hs)
	}
	t.Logf("first message to a new subscriber after %v, with silent, garbage and oversized clients pending", first)

	for _, c := range []struct {
		name string
		nc   net.Conn
		max  time.Duration
	}{{"oversized", huge, hs / 2}, {"garbage", garbage, hs + time.Second}, {"silent", silent, hs + time.Second}} {
		c.nc.SetReadDeadline(start.Add(c.max + 5*time.Second))
		_, err := io.Copy(io.Discard, c.nc)
		if err != nil {
			t.Errorf("%s client: connection ended with %v, want EOF", c.name, err)
		}
		if d := time.Since(start); d > c.max+time.Second {
			t.Errorf("%s client disconnected after %v, want within about %v", c.name, d, c.max)
		}
	}
}
