package plugins_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// StatsdEmitter with Circus's defaults (but the address) counts every
// watcher event as circus.app.watcher.<name>.<event>:1|c, the name as
// Circus's topics write it, and nothing of the arbiter's own.
func TestStatsdEmitter(t *testing.T) {
	t.Parallel()
	sd := testproc.NewUDPSink(t)
	e := start(t, fmt.Sprintf(`
[watcher:web]
cmd = WORKER sleep
numprocesses = 2

[watcher:Big Web]
cmd = WORKER sleep

[plugin:statsd]
use = circus.plugins.statsd.StatsdEmitter
host = 127.0.0.1
port = %d
`, sd.Port))
	pids := e.waitPids("web", 2)
	sd.WaitPacket(t, "circus.app.watcher.web.spawn:1|c", 2, 10*time.Second)
	sd.WaitPacket(t, "circus.app.watcher.web.start:1|c", 1, 10*time.Second)
	sd.WaitPacket(t, "circus.app.watcher.big_web.spawn:1|c", 1, 10*time.Second)

	e.call("kill", map[string]any{"name": "web", "pid": pids[0], "waiting": true})
	sd.WaitPacket(t, "circus.app.watcher.web.kill:1|c", 1, 10*time.Second)
	sd.WaitPacket(t, "circus.app.watcher.web.reap:1|c", 1, 10*time.Second)
	sd.WaitPacket(t, "circus.app.watcher.web.spawn:1|c", 3, 10*time.Second)
	for _, p := range sd.Packets() {
		if !regexp.MustCompile(`^circus\.app\.watcher\.(web|big_web)\.[a-z_]+:1\|c$`).MatchString(p) {
			t.Errorf("packet %q is not a Circus StatsdEmitter counter of a watcher event", p)
		}
	}
}

// FullStats sends Circus's gauges for each watcher every loop_rate, with
// Python's number formats: floats for percents, whole bytes for memory.
func TestFullStats(t *testing.T) {
	t.Parallel()
	sd := testproc.NewUDPSink(t)
	e := start(t, fmt.Sprintf(`
[watcher:web]
cmd = WORKER sleep
numprocesses = 2

[plugin:full]
use = circus.plugins.statsd.FullStats
loop_rate = 0.2
host = 127.0.0.1
port = %d
application_name = shop
`, sd.Port))
	e.waitPids("web", 2)
	sd.WaitPacket(t, "circus.shop.watcher._stats.web.watchers_num:2|g", 1, 10*time.Second)
	const p = `^circus\.shop\.watcher\._stats\.web\.`
	for _, re := range []string{
		p + `cpu_max:\d+\.\d+\|g$`, p + `cpu_sum:\d+\.\d+\|g$`,
		p + `mem_pct_max:\d+\.\d+\|g$`, p + `mem_pct_sum:\d+\.\d+\|g$`,
		p + `mem_max:\d+\|g$`, p + `mem_sum:\d+\|g$`,
	} {
		waitFor(t, re, 10*time.Second, func() bool { return len(sd.Matching(re)) > 0 })
	}
	maxes, sums := sd.Matching(p+`mem_max:`), sd.Matching(p+`mem_sum:`)
	mx, _ := strconv.Atoi(strings.TrimSuffix(strings.SplitN(maxes[0], ":", 2)[1], "|g"))
	sum, _ := strconv.Atoi(strings.TrimSuffix(strings.SplitN(sums[0], ":", 2)[1], "|g"))
	if mx < 100_000 || sum < mx {
		t.Errorf("mem_max %d, mem_sum %d: want a worker's resident bytes, and their sum", mx, sum)
	}
}

// WatchDog with loop_rate 0.2 (and Circus's other defaults: max_count 3,
// msg_regex PID;TIMESTAMP) stops a worker 0.6 to 0.8 s after its last
// heartbeat, while one that keeps sending survives, and a watcher it does
// not watch is left alone.
func TestWatchDog(t *testing.T) {
	t.Parallel()
	port := testproc.FreeUDPPort(t)
	e := start(t, fmt.Sprintf(`
[watcher:beat]
cmd = WORKER heartbeat 127.0.0.1:%d 50ms
numprocesses = 2

[watcher:quiet]
cmd = WORKER sleep

[plugin:wd]
use = circus.plugins.watchdog.WatchDog
loop_rate = 0.2
watchers_regex = beat
port = %d
`, port, port))
	pids := e.waitPids("beat", 2)
	quiet := e.waitPids("quiet", 1)
	// Long enough that, without their heartbeats, both would be gone.
	waitFor(t, "workers older than loop_rate × max_count", 10*time.Second, func() bool {
		return age(e, "beat", pids[1]) > 1.2 && age(e, "quiet", quiet[0]) > 1.2
	})
	if got := e.pids("beat"); !slices.Equal(got, pids) {
		t.Fatalf("beat's workers = %v before any fell silent, want %v", got, pids)
	}

	silenced := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the silent worker stopped", 10*time.Second, func() bool { return !slices.Contains(e.pids("beat"), pids[0]) })
	took := time.Since(silenced)
	t.Logf("silent worker stopped %v after its last heartbeat (loop_rate × max_count = 600ms)", took.Round(time.Millisecond))
	if took < 550*time.Millisecond || took > 3*time.Second {
		t.Errorf("silent worker stopped after %v, want 0.6-0.8s", took)
	}
	now := e.waitPids("beat", 2)
	if !slices.Contains(now, pids[1]) || testproc.Gone(pids[1]) {
		t.Errorf("beat's workers = %v: the one still sending heartbeats, %d, was stopped", now, pids[1])
	}
	if got := e.pids("quiet"); !slices.Equal(got, quiet) {
		t.Errorf("quiet's workers = %v, want %v untouched (not matched by watchers_regex)", got, quiet)
	}
	if !strings.Contains(e.log.String(), "worker not responding; stopping it") {
		t.Errorf("no log line for the stop")
	}
}

// age is a worker's age in seconds, from stats.
func age(e *env, watcher string, pid int) float64 {
	r := e.call("stats", map[string]any{"name": watcher})
	var info map[string]struct{ Age float64 }
	_ = json.Unmarshal(r["info"], &info)
	return info[strconv.Itoa(pid)].Age
}

// ResourceWatcher restarts a watcher whose worker stays over max_mem
// (absolute, 32M) for more than max_count (3) samples in a row, counting
// each breach in statsd; a watcher within bounds is left alone.
func TestResourceWatcher(t *testing.T) {
	t.Parallel()
	sd := testproc.NewUDPSink(t)
	plugin := func(name string) string {
		return fmt.Sprintf("[plugin:rw_%s]\nuse = circus.plugins.resource_watcher.ResourceWatcher\nwatcher = %s\n"+
			"max_mem = 32M\nloop_rate = 0.2\nhost = 127.0.0.1\nport = %d\n", name, name, sd.Port)
	}
	e := start(t, `
[watcher:hog]
cmd = WORKER hog 67108864

[watcher:calm]
cmd = WORKER sleep

`+plugin("hog")+plugin("calm"))
	hog := e.waitPids("hog", 1)
	calm := e.waitPids("calm", 1)
	began := time.Now()
	sd.WaitPacket(t, "circus.app.watcher._resource_watcher.hog.restarting:1|c", 1, 20*time.Second)
	e.replaced("hog", hog, 1, 20*time.Second)
	t.Logf("64 MiB worker restarted %v after it started (4 samples over 32M, 0.2 s apart)", time.Since(began).Round(time.Millisecond))
	if n := sd.Count("circus.app.watcher._resource_watcher.hog.over_memory:1|c"); n < 4 {
		t.Errorf("%d over_memory counts before the restart, want at least 4 (max_count 3 exceeded)", n)
	}
	if got := e.pids("calm"); !slices.Equal(got, calm) {
		t.Errorf("calm's workers = %v, want %v untouched", got, calm)
	}
	if got := sd.Matching(`_resource_watcher\.calm\.`); len(got) > 0 {
		t.Errorf("calm, within bounds, counted %q", got)
	}
}

// HttpObserver times each successful check into statsd; a failing one
// counts http_stats.error and http_stats.error.<code> (599: no answer)
// and, with restart_on_error naming a watcher, restarts it.
func TestHTTPObserver(t *testing.T) {
	t.Parallel()
	sd := testproc.NewUDPSink(t)
	var status atomic.Int32
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	e := start(t, fmt.Sprintf(`
[watcher:web]
cmd = WORKER sleep

[plugin:http]
use = circus.plugins.http_observer.HttpObserver
check_url = %s/health
loop_rate = 0.2
timeout = 2
restart_on_error = web
host = 127.0.0.1
port = %d
`, srv.URL, sd.Port))
	web := e.waitPids("web", 1)
	const p = "circus.http_observer.watcher.http_stats."
	waitFor(t, "3 request_time timings", 10*time.Second, func() bool {
		return len(sd.Matching(`^`+regexp.QuoteMeta(p)+`request_time:\d+\|ms$`)) >= 3
	})
	if got := e.pids("web"); !slices.Equal(got, web) || len(sd.Matching(`error`)) > 0 {
		t.Fatalf("while the URL answers 200: web's workers %v (want %v), packets %q", got, web, sd.Packets())
	}

	status.Store(http.StatusServiceUnavailable)
	sd.WaitPacket(t, p+"error:1|c", 1, 10*time.Second)
	sd.WaitPacket(t, p+"error.503:1|c", 1, 10*time.Second)
	sd.WaitPacket(t, p+"restart_on_error:1|c", 1, 10*time.Second)
	e.replaced("web", web, 1, 20*time.Second)

	srv.Close()
	sd.WaitPacket(t, p+"error.599:1|c", 1, 10*time.Second)
}

// CommandReloader, with its default loop_rate of 1 s, restarts a watcher
// once its program is replaced, whether cmd gives its path with arguments
// (Circus fails on those) or a bare name found in the watcher's PATH; the
// other watcher is untouched.
func TestCommandReloader(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	install := func(path string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(worker)
		if err != nil {
			t.Fatal(err)
		}
		// Written beside it and renamed over it, as installers do: a
		// running program cannot be written to (ETXTBSY).
		if err := os.WriteFile(path+".new", b, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".new", path); err != nil {
			t.Fatal(err)
		}
	}
	direct, viaPath := filepath.Join(dir, "bin", "prog"), filepath.Join(dir, "bin2", "prog2")
	install(direct)
	install(viaPath)
	e := start(t, fmt.Sprintf(`
[watcher:direct]
cmd = %s sleep

[watcher:viapath]
cmd = prog2 sleep

[env:viapath]
PATH = %s

[plugin:reload]
use = circus.plugins.command_reloader.CommandReloader
`, direct, filepath.Dir(viaPath)))
	d := e.waitPids("direct", 1)
	v := e.waitPids("viapath", 1)
	waitFor(t, "the reloader to look at both programs", 10*time.Second, func() bool {
		log := e.log.String()
		return strings.Contains(log, "path="+direct) && strings.Contains(log, "path="+viaPath)
	})

	replaced := time.Now()
	install(direct)
	d = e.replaced("direct", d, 1, 10*time.Second)
	t.Logf("direct restarted %v after its program was replaced", time.Since(replaced).Round(time.Millisecond))
	if got := e.pids("viapath"); !slices.Equal(got, v) {
		t.Errorf("viapath's workers = %v, want %v untouched", got, v)
	}

	install(viaPath)
	e.replaced("viapath", v, 1, 10*time.Second)
	if got := e.pids("direct"); !slices.Equal(got, d) {
		t.Errorf("direct's workers = %v, want %v untouched", got, d)
	}
}

// RedisObserver sends INFO's fields as gauges, as redis-py reads them
// (1.50 is 1.5), after AUTH with the URL's password; when redis stops
// answering it counts the error and restarts restart_on_timeout.
func TestRedisObserver(t *testing.T) {
	t.Parallel()
	sd := testproc.NewUDPSink(t)
	redis := newFakeRedis(t, "s3cret", "# Memory\r\nused_memory:1048576\r\nmem_fragmentation_ratio:1.50\r\n"+
		"# CPU\r\nused_cpu_sys:0.25\r\nlru_clock:123\r\nrole:master\r\n")
	e := start(t, fmt.Sprintf(`
[watcher:cache]
cmd = WORKER sleep

[plugin:redis]
use = circus.plugins.redis_observer.RedisObserver
redis_url = redis://:s3cret@%s/0
restart_on_timeout = cache
loop_rate = 0.2
timeout = 1
host = 127.0.0.1
port = %d
`, redis.addr, sd.Port))
	cache := e.waitPids("cache", 1)
	const p = "circus.redis_observer.watcher.redis_stats."
	sd.WaitPacket(t, p+"used_memory:1048576|g", 1, 10*time.Second)
	sd.WaitPacket(t, p+"mem_fragmentation_ratio:1.5|g", 1, 10*time.Second)
	sd.WaitPacket(t, p+"used_cpu_sys:0.25|g", 1, 10*time.Second)
	sd.WaitPacket(t, p+"lru_clock:123|g", 1, 10*time.Second)
	if got := sd.Matching(`role|error`); len(got) > 0 {
		t.Errorf("unexpected packets %q: role is not a field Circus sends, and redis answered", got)
	}

	redis.close()
	sd.WaitPacket(t, p+"error:1|c", 1, 10*time.Second)
	sd.WaitPacket(t, p+"restart_on_error:1|c", 1, 10*time.Second)
	e.replaced("cache", cache, 1, 20*time.Second)
}

// fakeRedis answers AUTH and INFO in RESP on a loopback port.
type fakeRedis struct {
	ln   net.Listener
	addr string
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]bool
}

func newFakeRedis(t *testing.T, password, info string) *fakeRedis {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &fakeRedis{ln: ln, addr: ln.Addr().String(), conn: map[net.Conn]bool{}}
	r.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r.mu.Lock()
			r.conn[c] = true
			r.mu.Unlock()
			r.wg.Go(func() { r.serve(c, password, info) })
		}
	})
	t.Cleanup(r.close)
	return r
}

func (r *fakeRedis) serve(c net.Conn, password, info string) {
	defer func() {
		r.mu.Lock()
		delete(r.conn, c)
		r.mu.Unlock()
		c.Close()
	}()
	rd := bufio.NewReader(c)
	authed := false
	for {
		args, err := readCommand(rd)
		if err != nil {
			return
		}
		switch {
		case len(args) == 2 && args[0] == "AUTH" && args[1] == password:
			authed = true
			io.WriteString(c, "+OK\r\n")
		case len(args) == 1 && args[0] == "INFO" && authed:
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(info), info)
		default:
			io.WriteString(c, "-NOAUTH Authentication required.\r\n")
		}
	}
}

// close stops listening and drops every connection.
func (r *fakeRedis) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conn {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// readCommand reads a RESP array of bulk strings.
func readCommand(rd *bufio.Reader) ([]string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*")))
	if err != nil || !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not an array: %q", line)
	}
	args := make([]string, n)
	for i := range args {
		if line, err = rd.ReadString('\n'); err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$")))
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// The Manager follows reloadconfig: a plugin whose section changed is
// restarted with the new options, a new one starts, a removed one stops,
// and one unchanged keeps running.
func TestManagerFollowsReload(t *testing.T) {
	t.Parallel()
	first, second := testproc.NewUDPSink(t), testproc.NewUDPSink(t)
	emitter := func(name string, port int) string {
		return fmt.Sprintf("[plugin:%s]\nuse = circus.plugins.statsd.StatsdEmitter\nhost = 127.0.0.1\nport = %d\n", name, port)
	}
	const watchers = "[watcher:web]\ncmd = WORKER sleep\n\n"
	e := start(t, watchers+emitter("keep", first.Port)+emitter("move", first.Port)+emitter("gone", first.Port))
	pids := e.waitPids("web", 1)
	first.WaitPacket(t, "circus.app.watcher.web.spawn:1|c", 3, 10*time.Second)

	reload := func(ini string) {
		t.Helper()
		cfg, err := config.Load(arbtest.WriteINI(t, e.dir, worker, ini))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := e.a.Reload(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	reload(watchers + emitter("keep", first.Port) + emitter("move", second.Port) + emitter("new", second.Port))
	waitFor(t, "the changed and the new plugin started", 10*time.Second, func() bool {
		return strings.Count(e.log.String(), "plugin started") == 5
	})
	e.call("kill", map[string]any{"name": "web", "pid": pids[0], "waiting": true})
	second.WaitPacket(t, "circus.app.watcher.web.reap:1|c", 2, 10*time.Second) // move and new
	first.WaitPacket(t, "circus.app.watcher.web.reap:1|c", 1, 10*time.Second)  // keep
	log := e.log.String()
	for _, want := range []string{"plugin stopped: its section changed\" plugin=move", "plugin stopped: its section is gone\" plugin=gone"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if n := strings.Count(log, "plugin=keep use="); n != 1 {
		t.Errorf("keep started %d times, want once: an unchanged section is not restarted", n)
	}
	// The reap went to the plugins of the time: keep alone on the first.
	if n := first.Count("circus.app.watcher.web.reap:1|c"); n != 1 {
		t.Errorf("%d reap counts at the first address, want 1 (from keep; move moved, gone stopped)", n)
	}
}

// A plugin that cannot start (its port is taken) is logged with its file,
// line and key; the arbiter runs on, and the next reload tries again.
func TestPluginCannotStart(t *testing.T) {
	t.Parallel()
	// Below the ephemeral range: once busy lets it go, the port must not
	// be taken by another test's socket before the reload binds it
	// (seen under load).
	port := testproc.FreeUDPPort(t)
	busy, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	ini := fmt.Sprintf("[watcher:web]\ncmd = WORKER sleep\n\n[plugin:wd]\nuse = circus.plugins.watchdog.WatchDog\nport = %d\n", port)
	e := start(t, ini)
	e.waitPids("web", 1)
	want := fmt.Sprintf("test.ini:6: [plugin:wd] port: listen udp 127.0.0.1:%d: bind: address already in use", port)
	if log := e.log.String(); !strings.Contains(log, want) {
		t.Fatalf("log lacks %q:\n%s", want, log)
	}
	busy.Close()
	cfg, err := config.Load(arbtest.WriteINI(t, e.dir, worker, ini))
	if err != nil {
		t.Fatal(err)
	}
	// Each reload tries again. Another test's FreeUDPPort may pick this
	// port in the moment it is free (seen once in CI): a later reload
	// then gets it, as an operator's would.
	var reloads int
	waitFor(t, "the watchdog started on reload", 10*time.Second, func() bool {
		if strings.Contains(e.log.String(), "listening for heartbeats") {
			return true
		}
		if reloads == 0 || strings.Count(e.log.String(), "plugin not started") > reloads {
			reloads++
			if err := e.a.Reload(context.Background(), cfg); err != nil {
				t.Fatal(err)
			}
		}
		return false
	})
	// The port is the plugin's now.
	if c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}); !errors.Is(err, syscall.EADDRINUSE) {
		if c != nil {
			c.Close()
		}
		t.Errorf("binding the watchdog's port again: %v, want EADDRINUSE", err)
	}
}
