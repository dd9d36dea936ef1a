package main_test

import (
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// The arbiter runs Circus's plugins from [plugin:NAME] sections: one that
// cannot start is reported with its file and line while the rest run, and
// reloadconfig moves, adds and removes them.
func TestPlugins(t *testing.T) {
	t.Parallel()
	first, second := testproc.NewUDPSink(t), testproc.NewUDPSink(t)
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
	a := startCtl(t, t.TempDir(), web+emitter(first.Port)+
		fmt.Sprintf("[plugin:wd]\nuse = circus.plugins.watchdog.WatchDog\nport = %d\n", busyPort))
	pids := a.waitPids(t, "web", 1)
	waitFor(t, "a spawn counted at the first statsd", 10*time.Second, func() bool {
		return first.Count("circus.app.watcher.web.spawn:1|c") == 1
	})
	want := fmt.Sprintf("circus.ini:11: [plugin:wd] port: listen udp 127.0.0.1:%d: bind: address already in use", busyPort)
	if out := a.out.String(); !strings.Contains(out, want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}

	a.reloadconfigOK(t, web+emitter(second.Port)+
		fmt.Sprintf("[plugin:full]\nuse = circus.plugins.statsd.FullStats\nloop_rate = 0.2\nhost = 127.0.0.1\nport = %d\n", second.Port))
	waitFor(t, "FullStats's gauges at the second statsd", 10*time.Second, func() bool {
		return second.Count("circus.app.watcher._stats.web.watchers_num:1|g") > 0
	})
	a.call(t, "kill", map[string]any{"name": "web", "pid": pids[0], "waiting": true})
	waitFor(t, "the reap counted at the second statsd", 10*time.Second, func() bool {
		return second.Count("circus.app.watcher.web.reap:1|c") == 1
	})
	if n := first.Count("circus.app.watcher.web.reap:1|c"); n != 0 {
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
