package sockets

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// dialN opens n connections to addr on network and closes them when the
// test ends. Each is established (in the accept queue) when Dial returns.
func dialN(t *testing.T, network, addr string, n int) {
	t.Helper()
	for range n {
		c, err := net.Dial(network, addr)
		if err != nil {
			t.Fatalf("dial %s %s: %v", network, addr, err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// acceptOne takes one connection off s's queue, as a worker would, on a
// copy of its descriptor (FileListener makes one).
func acceptOne(t *testing.T, s *Socket) {
	t.Helper()
	l, err := net.FileListener(s.file)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
}

// The queue of a TCP and of a unix listener, read together, follows the
// connections made and accepted, with the backlog as its limit.
func TestQueueReader(t *testing.T) {
	t.Parallel()
	tcp := mustBind(t, Spec{Name: "tcp", Host: "127.0.0.1", Port: 0, Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 16, Umask: -1})
	path := filepath.Join(t.TempDir(), "q.sock")
	unx := mustBind(t, unixSpec("unx", path))
	seq := mustBind(t, Spec{Name: "seq", Path: filepath.Join(t.TempDir(), "s.sock"), Type: "SOCK_SEQPACKET", Backlog: 8, Umask: -1})
	var r QueueReader
	defer r.Close()
	socks := []*Socket{tcp, unx, seq}

	check := func(what string, want ...Queue) {
		t.Helper()
		got := r.Read(nil, socks)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("%s: Read()[%d] (%s) = %+v, want %+v", what, i, socks[i].Name(), got[i], want[i])
			}
		}
	}
	check("empty", Queue{0, 16, nil}, Queue{0, 16, nil}, Queue{0, 8, nil})
	dialN(t, "tcp", tcp.Addr(), 5)
	dialN(t, "unix", path, 3)
	dialN(t, "unixpacket", seq.Addr(), 2)
	check("after connects", Queue{5, 16, nil}, Queue{3, 16, nil}, Queue{2, 8, nil})
	acceptOne(t, tcp)
	acceptOne(t, unx)
	check("after one accept each", Queue{4, 16, nil}, Queue{2, 16, nil}, Queue{2, 8, nil})
}

// A TCP socket whose inode is not known (the dump cannot name it) is read
// with getsockopt(TCP_INFO), the way the reader goes where the kernel has
// no inet_diag; the same figures come back.
func TestQueueReaderTCPInfo(t *testing.T) {
	t.Parallel()
	s := mustBind(t, Spec{Name: "tcp", Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 8, Umask: -1})
	rp := mustBind(t, Spec{Name: "rp", Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 4, ReusePort: true, Umask: -1})
	dialN(t, "tcp", s.Addr(), 3)
	var r QueueReader
	defer r.Close()
	want := r.Read(nil, []*Socket{s})[0]
	s.sockIno, rp.sockIno = 0, 0
	got := r.Read(nil, []*Socket{s, rp})
	if got[0] != want || want != (Queue{3, 8, nil}) {
		t.Errorf("Read() by TCP_INFO = %+v, by sock_diag %+v, want 3 of 8 both", got[0], want)
	}
	if !errors.Is(got[1].Err, errNotListening) {
		t.Errorf("Read() of a reuseport reservation by TCP_INFO: err = %v, want not listening", got[1].Err)
	}
}

// An abstract unix socket has no file, but its queue reads the same.
func TestQueueReaderAbstract(t *testing.T) {
	t.Parallel()
	name := "@ringmaster-queue-test-" + strings.ReplaceAll(t.Name(), "/", "-") + "-" + strconv.Itoa(os.Getpid())
	s := mustBind(t, unixSpec("abs", name))
	dialN(t, "unix", name, 4)
	var r QueueReader
	defer r.Close()
	if got := r.Read(nil, []*Socket{s}); got[0] != (Queue{4, 16, nil}) {
		t.Errorf("Read() = %+v, want 4 of 16", got[0])
	}
}

// A socket without an accept queue of its own (a reuseport reservation, a
// datagram socket), and one closed, have their error; the sockets beside
// them are read all the same.
func TestQueueReaderErrors(t *testing.T) {
	t.Parallel()
	good := mustBind(t, Spec{Name: "good", Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 4, Umask: -1})
	rp := mustBind(t, Spec{Name: "rp", Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 4, ReusePort: true, Umask: -1})
	closed := mustBind(t, unixSpec("closed", filepath.Join(t.TempDir(), "c.sock")))
	closed.Close()
	udp := mustBind(t, Spec{Name: "udp", Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_DGRAM", Umask: -1})
	dialN(t, "tcp", good.Addr(), 1)
	var r QueueReader
	defer r.Close()
	got := r.Read(make([]Queue, 7), []*Socket{rp, good, closed, udp})
	if len(got) != 4 {
		t.Fatalf("Read returned %d queues for 4 sockets", len(got))
	}
	if got[1] != (Queue{1, 4, nil}) {
		t.Errorf("Read()[1] (good) = %+v, want 1 of 4", got[1])
	}
	if !errors.Is(got[0].Err, errNotListening) || !strings.Contains(got[0].Err.Error(), `"rp"`) {
		t.Errorf("Read()[0] (reuseport) err = %v, want not listening, naming rp", got[0].Err)
	}
	if got[2].Err == nil {
		t.Errorf("Read()[2] (closed) = %+v, want an error", got[2])
	}
	if got[3].Err == nil {
		t.Errorf("Read()[3] (udp) = %+v, want an error", got[3])
	}
}

func TestCheckQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec Spec
		want string // in the error; "" for none
	}{
		{"tcp", Spec{Family: "AF_INET", Type: "SOCK_STREAM"}, ""},
		{"tcp6 by name", Spec{Family: "AF_INET6", Type: "SOCK_STREAM", Proto: "tcp"}, ""},
		{"unix", Spec{Path: "/run/x.sock", Type: "SOCK_STREAM"}, ""},
		{"unix seqpacket", Spec{Path: "/run/x.sock", Type: "SOCK_SEQPACKET"}, ""},
		{"udp", Spec{Family: "AF_INET", Type: "SOCK_DGRAM"}, "SOCK_DGRAM has no accept queue"},
		{"unix dgram", Spec{Path: "/run/x.sock", Type: "SOCK_DGRAM"}, "want SOCK_STREAM or SOCK_SEQPACKET"},
		{"sctp", Spec{Family: "AF_INET", Type: "SOCK_STREAM", Proto: "sctp"}, "only a TCP listener's queue"},
		{"reuseport", Spec{Family: "AF_INET", Type: "SOCK_STREAM", ReusePort: true}, "so_reuseport"},
		{"bad family", Spec{Family: "AF_X25"}, "AF_X25"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.spec.CheckQueue()
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("CheckQueue() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("CheckQueue() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// BenchmarkQueueReader100 reads 100 listeners, half TCP and half unix, as
// the autoscaler's sampler does each round, and reports the CPU time a
// round costs (this process's user and system time, which a loaded
// machine does not inflate as it does ns/op) as the share of one core
// that 10 rounds a second take.
func BenchmarkQueueReader100(b *testing.B) {
	dir := b.TempDir()
	var socks []*Socket
	for i := range 100 {
		spec := Spec{Name: "t" + strconv.Itoa(i), Host: "127.0.0.1", Family: "AF_INET", Type: "SOCK_STREAM", Backlog: 64, Umask: -1}
		if i%2 == 1 {
			spec = unixSpec("u"+strconv.Itoa(i), filepath.Join(dir, strconv.Itoa(i)+".sock"))
		}
		s, err := Bind(spec)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		socks = append(socks, s)
	}
	var r QueueReader
	defer r.Close()
	var qs []Queue
	c0 := cpuTime(b)
	for b.Loop() {
		qs = r.Read(qs, socks)
	}
	perRound := cpuTime(b) - c0
	perRound /= time.Duration(b.N)
	for i, q := range qs {
		if q.Err != nil {
			b.Fatalf("socket %d: %v", i, q.Err)
		}
	}
	b.ReportMetric(float64(perRound.Nanoseconds()), "cpu-ns/round")
	b.ReportMetric(float64(perRound*10)/float64(time.Second)*100, "%core@10Hz")
}

// cpuTime is this process's user and system time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
