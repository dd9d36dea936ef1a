package metrics

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

const metricsINI = `
[watcher:pool]
cmd = WORKER sleep
numprocesses = 3

[watcher:spinner]
cmd = WORKER spin

[socket:web]
host = 127.0.0.1
port = 0
`

// pids returns the pids of w's workers.
func pids(t *testing.T, w *arbiter.Watcher) []int {
	t.Helper()
	st, err := w.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, p := range st.Procs {
		out = append(out, p.Pid)
	}
	return out
}

// promtool checks a scrape with Prometheus's own parser and linter.
func promtool(t *testing.T, text string) {
	t.Helper()
	cmd := exec.Command(testproc.NeedTool(t, "promtool", "prometheus"), "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\non:\n%s", err, out, text)
	}
}

// The metrics read the arbiter as it is: workers by state, their summed
// cpu and memory, the accept queue, event drops, the Go runtime; the
// output passes promtool; and a worker killed with SIGKILL moves the
// restart counter by one while the cpu counter never goes down.
func TestMetrics(t *testing.T) {
	a, _ := runArbiter(t, metricsINI)
	bus := pubsub.NewBus()
	sub := bus.Subscribe(1)
	defer sub.Close()
	for range 3 {
		bus.Publish(pubsub.Event{Kind: pubsub.Spawn})
	}
	_, srv := serve(t, Options{Arbiter: a, Drops: []Drop{{Queue: "bus", Count: bus.Dropped}}})

	// Two connections nobody accepts wait in the queue.
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Sockets()[0].Port()))
	for range 2 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}

	var s scrape
	waitFor(t, "3 ready workers, a busy spinner and 2 queued connections", 20*time.Second, func() bool {
		s = scrapeOf(t, srv)
		ready, _ := s.value("ringmaster_watcher_processes", "watcher", "pool", "state", "ready")
		cpu, _ := s.value("ringmaster_worker_cpu_seconds_total", "watcher", "spinner")
		queue, _ := s.value("ringmaster_socket_accept_queue_length", "socket", "web")
		return ready == 3 && cpu >= 0.05 && queue == 2
	})
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ringmaster_watcher_up", []string{"watcher", "pool"}, 1},
		{"ringmaster_watcher_state", []string{"watcher", "pool", "state", "active"}, 1},
		{"ringmaster_watcher_state", []string{"watcher", "pool", "state", "stopped"}, 0},
		{"ringmaster_watcher_processes", []string{"watcher", "pool", "state", "starting"}, 0},
		{"ringmaster_watcher_processes", []string{"watcher", "pool", "state", "stopping"}, 0},
		{"ringmaster_watcher_target_processes", []string{"watcher", "pool"}, 3},
		{"ringmaster_events_dropped_total", []string{"queue", "bus"}, 2},
	} {
		if got := s.must(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	for _, r := range arbiter.Reasons {
		if got := s.must(t, "ringmaster_watcher_restarts_total", "watcher", "spinner", "reason", r); got != 0 {
			t.Errorf("restarts of spinner for %s = %v before any death, want 0", r, got)
		}
	}
	if rss := s.must(t, "ringmaster_worker_resident_memory_bytes", "watcher", "pool"); rss < 3*4096 {
		t.Errorf("resident memory of 3 workers = %v bytes", rss)
	}
	if lim := s.must(t, "ringmaster_socket_accept_queue_limit", "socket", "web"); lim < 2 {
		t.Errorf("accept queue limit = %v", lim)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if s.families[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}
	// Bounded cardinality: nothing a worker brings is a label.
	for name, f := range s.families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "pid" || l.GetName() == "wid" {
					t.Errorf("%s has a %s label", name, l.GetName())
				}
			}
		}
	}
	promtool(t, s.text)

	spinner := a.Watcher("spinner")
	victim := pids(t, spinner)[0]
	cpu := s.must(t, "ringmaster_worker_cpu_seconds_total", "watcher", "spinner")
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the restart counted and a new spinner", 20*time.Second, func() bool {
		s = scrapeOf(t, srv)
		now := s.must(t, "ringmaster_worker_cpu_seconds_total", "watcher", "spinner")
		if now < cpu {
			t.Fatalf("cpu counter went down from %v to %v across the worker's death", cpu, now)
		}
		cpu = now
		n, _ := s.value("ringmaster_watcher_restarts_total", "watcher", "spinner", "reason", "signal")
		ready, _ := s.value("ringmaster_watcher_processes", "watcher", "spinner", "state", "ready")
		p := pids(t, spinner)
		return n == 1 && ready == 1 && len(p) == 1 && p[0] != victim
	})
	for _, r := range arbiter.Reasons {
		if got := s.must(t, "ringmaster_watcher_restarts_total", "watcher", "pool", "reason", r); got != 0 {
			t.Errorf("restarts of pool for %s = %v, want 0: only spinner lost a worker", r, got)
		}
	}
	promtool(t, s.text)
}

// The cpu counter keeps what workers used once they are gone: a worker
// not seen again, and a pid reused by a new worker (another start time),
// add their last cpu time to the watcher's total; a worker unreadable for
// a moment keeps its last figure. /proc is faked here: it cannot be made
// to fail a read on demand (TestMetrics reads the real one).
func TestCPUCounter(t *testing.T) {
	c := newCollector(Options{})
	procs := map[int]procfs.Stat{}
	c.stat = func(pid int) (procfs.Stat, error) {
		st, ok := procs[pid]
		if !ok {
			return procfs.Stat{}, procfs.ErrNoProcess
		}
		if st.State == 'X' {
			return procfs.Stat{}, syscall.EIO
		}
		return st, nil
	}
	w := &arbiter.Watcher{}
	scrape := func(pids ...int) uint64 {
		var infos []arbiter.ProcessInfo
		for _, p := range pids {
			infos = append(infos, arbiter.ProcessInfo{Pid: p})
		}
		ticks, _ := c.sample(w, infos)
		return ticks
	}
	steps := []struct {
		name  string
		procs map[int]procfs.Stat
		pids  []int
		want  uint64
	}{
		{"two workers", map[int]procfs.Stat{10: {StartTime: 1, Utime: 100}, 11: {StartTime: 1, Stime: 50, Cutime: 5}}, []int{10, 11}, 155},
		{"they run on", map[int]procfs.Stat{10: {StartTime: 1, Utime: 150}, 11: {StartTime: 1, Stime: 60, Cutime: 5}}, []int{10, 11}, 215},
		{"11 exits, its 65 stay", map[int]procfs.Stat{10: {StartTime: 1, Utime: 160}}, []int{10}, 225},
		{"listed but gone before it was read", map[int]procfs.Stat{}, []int{10}, 225},
		{"a new worker", map[int]procfs.Stat{12: {StartTime: 2, Utime: 10}}, []int{12}, 235},
		{"unreadable for a moment", map[int]procfs.Stat{12: {State: 'X'}}, []int{12}, 235},
		{"readable again", map[int]procfs.Stat{12: {StartTime: 2, Utime: 20}}, []int{12}, 245},
		{"pid 12 reused by another worker", map[int]procfs.Stat{12: {StartTime: 3, Utime: 1}}, []int{12}, 246},
	}
	for _, s := range steps {
		procs = s.procs
		if got := scrape(s.pids...); got != s.want {
			t.Fatalf("%s: cpu = %d ticks, want %d", s.name, got, s.want)
		}
	}
}
