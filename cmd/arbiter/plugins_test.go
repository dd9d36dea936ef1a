package main_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// udpSink is a statsd daemon for tests: it keeps every datagram.
type udpSink struct {
	port int
	mu   sync.Mutex
	got  []string
}

func newUDPSink(t *testing.T) *udpSink {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s := &udpSink{port: conn.LocalAddr().(*net.UDPAddr).Port}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, _, err := conn.ReadFrom(buf)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.mu.Lock()
			s.got = append(s.got, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return s
}

func (s *udpSink) count(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, g := range s.got {
		if g == p {
			n++
		}
	}
	return n
}

// The arbiter runs Circus's plugins from [plugin:NAME] sections: one that
// cannot start is reported with its file and line while the rest run, and
// reloadconfig moves, adds and removes them.
func TestPlugins(t *testing.T) {
	t.Parallel()
	first, second := newUDPSink(t), newUDPSink(t)
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.LocalAddr().(*net.UDPAddr).Port
	const web = "[watcher:web]\ncmd = WORKER sleep\n\n"
	emitter := func(port int) string {
		return fmt.Sprintf("[plugin:statsd]\nuse = circus.plugins.statsd.StatsdEmitter\nhost = 127.0.0.1\nport = %d\n\n", port)
	}
	a := startCtl(t, t.TempDir(), web+emitter(first.port)+
		fmt.Sprintf("[plugin:wd]\nuse = circus.plugins.watchdog.WatchDog\nport = %d\n", busyPort))
	pids := a.waitPids(t, "web", 1)
	waitFor(t, "a spawn counted at the first statsd", 10*time.Second, func() bool {
		return first.count("circus.app.watcher.web.spawn:1|c") == 1
	})
	want := fmt.Sprintf("circus.ini:11: [plugin:wd] port: listen udp 127.0.0.1:%d: bind: address already in use", busyPort)
	if out := a.out.String(); !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}

	a.reloadconfigOK(t, web+emitter(second.port)+
		fmt.Sprintf("[plugin:full]\nuse = circus.plugins.statsd.FullStats\nloop_rate = 0.2\nhost = 127.0.0.1\nport = %d\n", second.port))
	waitFor(t, "FullStats's gauges at the second statsd", 10*time.Second, func() bool {
		return second.count("circus.app.watcher._stats.web.watchers_num:1|g") > 0
	})
	a.call(t, "kill", map[string]any{"name": "web", "pid": pids[0], "waiting": true})
	waitFor(t, "the reap counted at the second statsd", 10*time.Second, func() bool {
		return second.count("circus.app.watcher.web.reap:1|c") == 1
	})
	if n := first.count("circus.app.watcher.web.reap:1|c"); n != 0 {
		t.Errorf("the first statsd counted %d reaps after the plugin moved", n)
	}
	for _, want := range []string{"plugin stopped: its section changed", "plugin=full use=circus.plugins.statsd.FullStats"} {
		if out := a.out.String(); !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}

	a.reloadconfigOK(t, web)
	waitFor(t, "both plugins stopped", 10*time.Second, func() bool {
		return strings.Count(a.out.String(), "plugin stopped: its section is gone") == 2
	})
	a.stop(t, syscall.SIGTERM)
}
