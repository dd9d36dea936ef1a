// Package examples_test runs the example configurations end to end: the real
// arbiter binary, the real workers, real sockets. Each test copies one
// examples/*.ini into a temporary directory, moves it to a free port, runs
// `arbiter CONFIG` there and checks what a user would check with curl and
// kill.
//
// The examples directory holds no Go package of its own, only the worker
// programs under it (examples/httpworker) and these tests.
package examples_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Deadlines for things that take milliseconds when all is well; generous so
// that a loaded CI machine running -race does not flake.
const (
	startDeadline = 30 * time.Second
	stopDeadline  = 30 * time.Second
)

var (
	// binDir holds the arbiter and httpworker binaries built by TestMain.
	binDir string
	// examplesDir is this directory, absolute, for the example programs
	// that are not built (wsgi/app.py).
	examplesDir string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	if examplesDir, err = os.Getwd(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "ringmaster-examples-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = dir
	// Build once for every test, from the module root, the way the README
	// tells a user to. `go test` puts its own go first in PATH.
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator), "./cmd/arbiter", "./examples/httpworker")
	build.Dir = filepath.Dir(examplesDir)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/arbiter ./examples/httpworker: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

func TestHTTP(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	workers := a.waitWorkers(t, "httpworker", 4)

	// Every worker accept()s on the same socket: a burst of fresh
	// connections must reach more than one of them.
	seen := map[int]bool{}
	deadline := time.Now().Add(startDeadline)
	for len(seen) < 2 && time.Now().Before(deadline) {
		for pid := range burst(t, a.url, 64, 8) {
			seen[pid] = true
		}
	}
	if len(seen) < 2 {
		t.Fatalf("a burst of requests was answered by pids %v, want at least 2 distinct workers", keys(seen))
	}
	for pid := range seen {
		if !workers[pid] {
			t.Errorf("pid %d answered but is not one of the arbiter's workers %v", pid, keys(workers))
		}
	}
	// The example turns the console on, as the README says.
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(a.console)
	if err != nil {
		t.Fatalf("console: %v", err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "Ringmaster") {
		t.Errorf("console %s: %s, %.200q", a.console, resp.Status, page)
	}
	a.stop(t)
}

func TestHTTPRespawnAfterKill(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	before := a.waitWorkers(t, "httpworker", 4)
	victim := get(t, a.url)

	// A request loop runs throughout: the socket belongs to the arbiter,
	// so while a worker is dead the connection waits in the backlog for
	// another worker; it must never be refused. A request the victim had
	// already accepted may be cut off: that is the cost of SIGKILL, not a
	// refused connection.
	var (
		ok, cut atomic.Int64
		refused atomic.Int64
		loopErr = make(chan error, 1)
	)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				_, err := fetch(c, a.url)
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
					select {
					case loopErr <- err:
					default:
					}
				case ctx.Err() == nil:
					cut.Add(1)
				}
			}
		})
	}

	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", victim, err)
	}
	// The arbiter reaps the victim (no zombie left) and starts another.
	waitFor(t, startDeadline, fmt.Sprintf("killed worker %d to be reaped", victim), func() bool {
		return !alive(proc{pid: victim})
	})
	var replacement int
	waitFor(t, startDeadline, "a replacement worker", func() bool {
		for pid := range a.workers("httpworker") {
			if !before[pid] {
				replacement = pid
				return true
			}
		}
		return false
	})
	waitFor(t, startDeadline, fmt.Sprintf("replacement %d to answer", replacement), func() bool {
		return burst(t, a.url, 16, 4)[replacement]
	})
	if n := len(a.workers("httpworker")); n != 4 {
		t.Errorf("after the respawn the arbiter runs %d workers, want 4", n)
	}

	cancel()
	wg.Wait()
	t.Logf("request loop: %d answered, %d cut off by the kill, %d refused", ok.Load(), cut.Load(), refused.Load())
	if n := refused.Load(); n > 0 {
		t.Errorf("%d requests were refused while a worker was replaced (first: %v); the socket must stay open", n, <-loopErr)
	}
	if ok.Load() == 0 {
		t.Errorf("the request loop got no answer at all")
	}
	a.stop(t)
}

// A steady request load sees no failed request while the pool is
// reloaded gracefully (a changed option: new workers first, old ones
// drained), grown and shrunk, each by SIGHUP.
func TestHTTPReloadUnderLoad(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	before := a.waitWorkers(t, "httpworker", 4)

	var ok, failed atomic.Int64
	firstErr := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
			for ctx.Err() == nil {
				if _, err := fetch(c, a.url); err == nil {
					ok.Add(1)
				} else if ctx.Err() == nil {
					failed.Add(1)
					t.Logf("%s request failed: %v", time.Now().Format("15:04:05.000"), err)
					select {
					case firstErr <- err:
					default:
					}
				}
			}
		})
	}
	rewrite := func(re, repl string) {
		t.Helper()
		b, err := os.ReadFile(a.ini)
		if err != nil {
			t.Fatal(err)
		}
		rx := regexp.MustCompile(re)
		if !rx.Match(b) {
			t.Fatalf("%s has no line matching %s", a.ini, re)
		}
		if err := os.WriteFile(a.ini, rx.ReplaceAll(b, []byte(repl)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}
	served := func(what string) {
		t.Helper()
		n := ok.Load()
		waitFor(t, startDeadline, "requests served after "+what, func() bool { return ok.Load() > n+20 })
	}

	rewrite(`(?m)^graceful_timeout = \d+$`, "graceful_timeout = 14")
	waitFor(t, startDeadline, "4 new workers replacing the old ones", func() bool {
		now := a.workers("httpworker")
		for pid := range now {
			if before[pid] {
				return false
			}
		}
		return len(now) == 4
	})
	served("the reload")
	rewrite(`(?m)^numprocesses = \d+$`, "numprocesses = 6")
	a.waitWorkers(t, "httpworker", 6)
	served("growing to 6")
	rewrite(`(?m)^numprocesses = \d+$`, "numprocesses = 2")
	a.waitWorkers(t, "httpworker", 2)
	served("shrinking to 2")

	cancel()
	wg.Wait()
	t.Logf("request loop: %d answered, %d failed", ok.Load(), failed.Load())
	if n := failed.Load(); n != 0 {
		t.Errorf("%d requests failed during reload and resizes (first: %v); want none", n, <-firstErr)
	}
	a.stop(t)
}

func TestHTTPDrainOnStop(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "http.ini")
	a.waitWorkers(t, "httpworker", 4)

	// A request is inside a worker's handler when SIGTERM reaches the
	// arbiter: the worker must finish it before exiting, well within
	// graceful_timeout, so the client gets the whole answer.
	resp, err := (&http.Client{Timeout: stopDeadline}).Get(a.url + "slow?ms=500")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "sleeping") {
		t.Fatalf("GET /slow: first line %q, %v; want \"sleeping ...\"", first, err)
	}
	rest := make(chan string, 1)
	go func() {
		b, err := io.ReadAll(r)
		if err != nil {
			b = append(b, "read error: "+err.Error()...)
		}
		rest <- string(b)
	}()
	a.stop(t)
	if got := <-rest; !strings.HasPrefix(got, "slept") {
		t.Errorf("GET /slow interrupted by the stop: rest of the body %q, want \"slept ...\"", got)
	}
}

func TestWSGI(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is required with CI=true: %v", err)
		}
		t.Skipf("python3 not found (%v); .ci/run installs it", err)
	}
	a := startArbiter(t, "wsgi.ini")
	workers := a.waitWorkers(t, "python", 4)
	pid := get(t, a.url)
	if !workers[pid] {
		t.Errorf("pid %d answered but is not one of the arbiter's workers %v", pid, keys(workers))
	}
	a.stop(t)
}

func TestSystemd(t *testing.T) {
	t.Parallel()
	a := startArbiter(t, "systemd.ini")
	workers := a.waitWorkers(t, "httpworker", 4)
	// httpworker refuses to serve unless LISTEN_PID is its own pid, so an
	// answer means LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID were right.
	pid := get(t, a.url)
	if !workers[pid] {
		t.Errorf("pid %d answered but is not one of the arbiter's workers %v", pid, keys(workers))
	}
	a.stop(t)
}

// arbiter is one running `arbiter CONFIG`.
type arbiter struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	url  string
	addr string
	ini  string // the config it runs, which a test may rewrite and SIGHUP
	// console is the web console's URL, for an example with httpd = true.
	console string
}

var (
	// portRE matches the port key of a [socket:] section.
	portRE = regexp.MustCompile(`(?m)^port\s*=\s*\d+\s*$`)
	// circusRE matches a [circus] section header.
	circusRE = regexp.MustCompile(`(?m)^\s*\[circus\]`)
)

// startArbiter runs the arbiter on a copy of examples/NAME whose socket
// listens on a free port and whose control endpoints are free ports too
// (so tests run in parallel), and waits until GET / answers.
func startArbiter(t *testing.T, name string) *arbiter {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(portRE.FindAll(src, -1)); n != 1 {
		t.Fatalf("%s has %d port keys, want 1", name, n)
	}
	port, consolePort := freePort(t), freePort(t)
	// Free ports for the endpoints and the console, put first in the
	// [circus] section: in Circus's dialect the first of a duplicate key
	// wins, so they override the example's.
	circus := fmt.Sprintf("[circus]\nendpoint = tcp://127.0.0.1:%d\npubsub_endpoint = tcp://127.0.0.1:%d\nhttpd_port = %d\n",
		freePort(t), freePort(t), consolePort)
	ini := portRE.ReplaceAllString(string(src), fmt.Sprintf("port = %d", port))
	if loc := circusRE.FindStringIndex(ini); loc != nil {
		ini = ini[:loc[0]] + circus + ini[loc[1]:]
	} else {
		ini = circus + "\n" + ini
	}

	// The example's relative paths (bin/httpworker, examples/wsgi/app.py)
	// resolve against the arbiter's working directory, as in the README.
	dir := t.TempDir()
	for link, target := range map[string]string{"bin": binDir, "examples": examplesDir} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file rather than a pipe: workers share the arbiter's stdout, and a
	// pipe would stay open (and cmd.Wait blocked) for as long as any of
	// them lived.
	logf, err := os.Create(filepath.Join(dir, "arbiter.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()

	cmd := exec.Command(filepath.Join(binDir, "arbiter"), "--log-level", "debug", name)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &arbiter{
		cmd:  cmd,
		done: make(chan struct{}),
		addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		ini:  filepath.Join(dir, name),
	}
	a.url = "http://" + a.addr + "/"
	a.console = fmt.Sprintf("http://127.0.0.1:%d/", consolePort)
	go func() {
		cmd.Wait()
		close(a.done)
	}()
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		a.kill(t)
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("arbiter output:\n%s", b)
			}
		}
	})

	c := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, startDeadline, "the arbiter to serve "+a.url, func() bool {
		select {
		case <-a.done:
			t.Fatalf("arbiter exited before serving: %v", cmd.ProcessState)
		default:
		}
		_, err := fetch(c, a.url)
		return err == nil
	})
	return a
}

// stop sends SIGTERM to the arbiter, as a user's Ctrl-C or a service manager
// would, and checks that it exits 0 in time leaving no process of its tree
// and nothing listening on its port.
func (a *arbiter) stop(t *testing.T) {
	t.Helper()
	tree := descendants(a.cmd.Process.Pid)
	if len(tree) == 0 {
		t.Errorf("the arbiter has no child processes before stop")
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM to the arbiter: %v", err)
	}
	select {
	case <-a.done:
	case <-time.After(stopDeadline):
		t.Fatalf("the arbiter did not exit within %v of SIGTERM", stopDeadline)
	}
	if code := a.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the arbiter exited with %v after SIGTERM, want exit status 0", a.cmd.ProcessState)
	}
	// The arbiter reaps its workers before it exits; one still alive now
	// would have outlived it (re-parented away from us).
	for _, p := range tree {
		if alive(p) {
			t.Errorf("process %d (%s) of the arbiter's tree is still running after the arbiter exited", p.pid, p.comm)
		}
	}
	if c, err := net.DialTimeout("tcp", a.addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts connections after the arbiter exited", a.addr)
	}
}

// kill leaves nothing behind, whatever state the test ended in. Workers
// lead process groups of their own, so killing the arbiter's group alone
// would not reach them: kill every descendant's group first.
func (a *arbiter) kill(t *testing.T) {
	select {
	case <-a.done:
		return
	default:
	}
	pgid := a.cmd.Process.Pid // Setpgid: the arbiter leads its group
	for _, p := range descendants(a.cmd.Process.Pid) {
		syscall.Kill(-p.pid, syscall.SIGKILL)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-a.done:
	case <-time.After(stopDeadline):
		t.Errorf("arbiter %d did not die of SIGKILL", pgid)
	}
}

// workers returns the pids of the arbiter's live descendants whose command
// name starts with comm (a prefix, so that "python3" also matches a
// "python3.11" reached through a symlink or a pyenv shim).
func (a *arbiter) workers(comm string) map[int]bool {
	m := map[int]bool{}
	for _, p := range descendants(a.cmd.Process.Pid) {
		if strings.HasPrefix(p.comm, comm) && p.state != 'Z' {
			m[p.pid] = true
		}
	}
	return m
}

// waitWorkers waits until exactly n workers run comm (a worker seen between
// fork and exec still runs the arbiter's image, so comm is what counts).
func (a *arbiter) waitWorkers(t *testing.T, comm string, n int) map[int]bool {
	t.Helper()
	var m map[int]bool
	waitFor(t, startDeadline, fmt.Sprintf("%d %s workers", n, comm), func() bool {
		m = a.workers(comm)
		return len(m) == n
	})
	return m
}

var pidRE = regexp.MustCompile(`pid (\d+)`)

// fetch GETs url and returns the pid in the answer.
func fetch(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
	}
	m := pidRE.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("GET %s = %q, want a body naming a pid", url, body)
	}
	return strconv.Atoi(string(m[1]))
}

// get is fetch for a request that must succeed.
func get(t *testing.T, url string) int {
	t.Helper()
	pid, err := fetch(&http.Client{Timeout: 10 * time.Second}, url)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// burst sends n requests, conc at a time, each on a new connection so that
// any worker may accept it, and returns the pids that answered.
func burst(t *testing.T, url string, n, conc int) map[int]bool {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var (
		mu   sync.Mutex
		pids = map[int]bool{}
		errs []error
		wg   sync.WaitGroup
		jobs = make(chan struct{})
	)
	for range conc {
		wg.Go(func() {
			for range jobs {
				pid, err := fetch(c, url)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					pids[pid] = true
				}
				mu.Unlock()
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(errs), n, errs[0])
	}
	return pids
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		<-tick.C
	}
}

var freePort = testproc.FreePort

func keys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// proc identifies a process across pid reuse: pid plus start time.
type proc struct {
	pid   int
	ppid  int
	start uint64 // field 22 of /proc/PID/stat, in clock ticks since boot
	comm  string
	state byte
}

// readProc reads /proc/PID/stat.
func readProc(pid int) (proc, bool) {
	var r procfs.Reader
	st, err := r.Stat(pid)
	if err != nil {
		return proc{}, false
	}
	return proc{pid: pid, ppid: st.PPid, start: st.StartTime, comm: st.Comm, state: st.State}, true
}

// alive reports whether p still runs: same pid and start time, and not a
// zombie (a zombie has exited; whoever its parent is will reap it).
func alive(p proc) bool {
	q, ok := readProc(p.pid)
	if !ok || q.state == 'Z' || q.state == 'X' {
		return false
	}
	return p.start == 0 || q.start == p.start
}

// descendants lists every process below pid, found through /proc.
func descendants(pid int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, ok := readProc(n); ok {
			children[p.ppid] = append(children[p.ppid], p)
		}
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
		queue = queue[1:]
	}
	return out
}
