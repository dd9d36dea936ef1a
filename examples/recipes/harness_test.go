package recipes_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Deadlines for what takes a second when all is well: generous, so that a
// loaded CI machine running -race does not flake.
const (
	startDeadline  = 60 * time.Second
	stopDeadline   = 60 * time.Second
	requestTimeout = 30 * time.Second
)

var (
	// binDir holds arbiter, circusctl and httpworker, built by TestMain.
	binDir string
	// examplesDir is examples/, absolute: the recipes name the programs
	// under it by paths relative to the repository root.
	examplesDir string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	examplesDir = filepath.Dir(wd)
	if binDir, err = os.MkdirTemp("", "ringmaster-recipes-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	// Built from the module root, as docs/recipes.md tells a user to.
	build := exec.Command("go", "build", "-o", binDir+string(filepath.Separator),
		"./cmd/arbiter", "./cmd/circusctl", "./examples/httpworker")
	build.Dir = filepath.Dir(examplesDir)
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	// Every test stops its load and waits for its arbiter; a goroutine
	// still running now was left behind by one of them.
	if err := goleak.Find(); code == 0 && err != nil {
		fmt.Fprintln(os.Stderr, "goleak:", err)
		return 1
	}
	return code
}

// needProgram skips a test whose recipe runs a program that is not
// installed, except with CI=true: .ci/run installs it there.
func needProgram(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required with CI=true (Debian package %s): %v", name, pkg, err)
		}
		t.Skipf("%s not found (%v); .ci/run installs Debian's %s", name, err, pkg)
	}
}

// arbiter is one `arbiter RECIPE.ini` running in a temporary directory.
type arbiter struct {
	cmd      *exec.Cmd
	done     chan struct{} // closed once cmd.Wait returned
	out      *testproc.Buffer
	url      string
	addr     string
	endpoint string // its control endpoint, for circusctl
}

var (
	portRE   = regexp.MustCompile(`(?m)^port\s*=\s*\d+\s*$`)
	circusRE = regexp.MustCompile(`(?m)^\s*\[circus\]\s*$`)
)

// startRecipe runs the arbiter on a copy of examples/recipes/NAME whose
// socket and control endpoints are moved to free ports, from a directory
// where bin/ holds the built binaries and examples/ is the repository's:
// the layout the recipes assume. It returns once GET / is answered.
func startRecipe(t *testing.T, name string) *arbiter {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(examplesDir, "recipes", name))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(portRE.FindAll(src, -1)); n != 1 {
		t.Fatalf("%s has %d port keys, want 1", name, n)
	}
	port := testproc.FreePort(t)
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", testproc.FreePort(t))
	// In Circus's dialect the first of two duplicate keys wins, so these
	// override whatever the recipe says.
	circus := fmt.Sprintf("[circus]\nendpoint = %s\npubsub_endpoint = tcp://127.0.0.1:%d\n",
		endpoint, testproc.FreePort(t))
	ini := portRE.ReplaceAllString(string(src), fmt.Sprintf("port = %d", port))
	if loc := circusRE.FindStringIndex(ini); loc != nil {
		ini = ini[:loc[0]] + circus + ini[loc[1]:]
	} else {
		ini = circus + "\n" + ini
	}
	dir := t.TempDir()
	for link, target := range map[string]string{"bin": binDir, "examples": examplesDir} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}

	a := &arbiter{
		done:     make(chan struct{}),
		out:      &testproc.Buffer{},
		addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		endpoint: endpoint,
	}
	a.url = "http://" + a.addr + "/"
	a.cmd = exec.Command(filepath.Join(binDir, "arbiter"), name)
	a.cmd.Dir = dir
	a.cmd.Stdout, a.cmd.Stderr = a.out, a.out
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		a.kill(t)
		if t.Failed() {
			t.Logf("arbiter output:\n%s", a.out)
		}
	})

	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	testproc.WaitFor(t, "the arbiter to serve "+a.url, startDeadline, func() bool {
		select {
		case <-a.done:
			t.Fatalf("arbiter exited before serving: %v\n%s", a.cmd.ProcessState, a.out)
		default:
		}
		_, err := fetch(c, a.url)
		return err == nil
	})
	return a
}

// circusctl runs our circusctl against the arbiter and returns its output.
func (a *arbiter) circusctl(t *testing.T, args ...string) string {
	t.Helper()
	args = append([]string{"--endpoint", a.endpoint, "--timeout", "120"}, args...)
	out, err := exec.Command(filepath.Join(binDir, "circusctl"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("circusctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// workers returns the pids of the watcher's processes, as `circusctl list
// NAME` reports them (a gunicorn or uWSGI master's own workers are its
// children, not the arbiter's).
func (a *arbiter) workers(t *testing.T, watcher string) []int {
	t.Helper()
	var pids []int
	for f := range strings.FieldsFuncSeq(a.circusctl(t, "list", watcher), func(r rune) bool { return r == ',' || r == '\n' }) {
		pid, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("circusctl list %s: %q is not a pid", watcher, f)
		}
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// stop sends SIGTERM to the arbiter, as a service manager would, and
// checks that it exits 0 in time and leaves no process of its tree.
func (a *arbiter) stop(t *testing.T) {
	t.Helper()
	tree := descendants(a.cmd.Process.Pid)
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
	for _, p := range tree {
		if alive(p) {
			t.Errorf("process %d (%s) of the arbiter's tree outlived it", p.pid, p.comm)
		}
	}
}

// kill leaves nothing behind whatever state the test ended in. Workers
// lead process groups of their own, so each descendant's group is killed.
func (a *arbiter) kill(t *testing.T) {
	select {
	case <-a.done:
		return
	default:
	}
	for _, p := range descendants(a.cmd.Process.Pid) {
		syscall.Kill(-p.pid, syscall.SIGKILL)
		syscall.Kill(p.pid, syscall.SIGKILL)
	}
	syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-a.done:
	case <-time.After(stopDeadline):
		t.Errorf("arbiter %d did not die of SIGKILL", a.cmd.Process.Pid)
	}
}

var pidRE = regexp.MustCompile(`hello from pid (\d+)`)

// fetch GETs url on c and returns the pid the answer names.
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
		return 0, fmt.Errorf("GET %s = %q, want \"hello from pid N\"", url, body)
	}
	return strconv.Atoi(string(m[1]))
}

// load is a few clients requesting GET / in a loop, each request on a new
// connection (so that every one goes through the listening socket).
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	lats   []time.Duration // of the answered requests
	failed []error
}

// startLoad starts clients concurrent clients against url, until stop
// or the end of the test.
func startLoad(t *testing.T, url string, clients int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	t.Cleanup(func() { l.stop() })
	for range clients {
		l.wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: requestTimeout}
			for ctx.Err() == nil {
				t0 := time.Now()
				_, err := fetch(c, url)
				lat := time.Since(t0)
				l.mu.Lock()
				if err == nil {
					l.lats = append(l.lats, lat)
				} else {
					l.failed = append(l.failed, fmt.Errorf("%s: %w", t0.Format("15:04:05.000"), err))
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// served returns the number of requests answered so far.
func (l *load) served() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lats)
}

// stop ends the load and returns the latencies of the answered requests,
// sorted, and the errors of the others; it may be called again.
func (l *load) stop() (lats []time.Duration, failed []error) {
	l.cancel()
	l.wg.Wait()
	slices.Sort(l.lats)
	return l.lats, l.failed
}

// proc identifies a process across pid reuse: pid plus start time.
type proc struct {
	pid, ppid int
	start     uint64
	comm      string
	state     byte
}

func readProc(pid int) (proc, bool) {
	var r procfs.Reader
	st, err := r.Stat(pid)
	if err != nil {
		return proc{}, false
	}
	return proc{pid: pid, ppid: st.PPid, start: st.StartTime, comm: st.Comm, state: st.State}, true
}

// alive reports whether p still runs: same pid and start time, no zombie.
func alive(p proc) bool {
	q, ok := readProc(p.pid)
	return ok && q.state != 'Z' && q.state != 'X' && q.start == p.start
}

// descendants lists every process below pid, found through /proc.
func descendants(pid int) []proc {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]proc{}
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			if p, ok := readProc(n); ok {
				children[p.ppid] = append(children[p.ppid], p)
			}
		}
	}
	var out []proc
	for queue := []int{pid}; len(queue) > 0; queue = queue[1:] {
		for _, c := range children[queue[0]] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// errorsText joins the first few errors for a failure message.
func errorsText(errs []error) string {
	var b bytes.Buffer
	for i, err := range errs {
		if i == 5 {
			fmt.Fprintf(&b, "\n\t... and %d more", len(errs)-i)
			break
		}
		fmt.Fprintf(&b, "\n\t%v", err)
	}
	return b.String()
}
