package examples_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// Deadlines for what takes a second when all is well: generous, so that a
// loaded CI machine running -race (gunicorn and uWSGI starting beside the
// other tests) does not flake.
const (
	startDeadline = 60 * time.Second
	stopDeadline  = 60 * time.Second
)

var (
	// binDir holds arbiter, circusctl and httpworker, built by TestMain.
	binDir string
	// examplesDir is this directory, absolute: the configurations name
	// the programs under it (examples/wsgi/app.py) by paths relative to
	// the repository root.
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
	if binDir, err = os.MkdirTemp("", "ringmaster-examples-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(binDir)
	// Built once for every test, from the module root, the way the README
	// and docs/recipes.md tell a user to. `go test` puts its own go first
	// in PATH.
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

// arbiter is one `arbiter CONFIG` running in a temporary directory.
type arbiter struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once cmd.Wait returned
	log  string        // the file holding its output and its workers'
	url  string
	addr string
	ini  string // the config it runs, which a test may rewrite and SIGHUP
	// endpoint is its control endpoint, for circusctl.
	endpoint string
	// console is the web console's URL, for a config with httpd = true.
	console string
}

var (
	// portRE matches the port key of a [socket:] section.
	portRE = regexp.MustCompile(`(?m)^port\s*=\s*\d+\s*$`)
	// circusRE matches a [circus] section header.
	circusRE = regexp.MustCompile(`(?m)^\s*\[circus\]\s*$`)
)

// startArbiter runs the arbiter on a copy of examples/NAME (NAME may be
// recipes/go.ini) whose socket, control endpoints and console are moved to
// free ports, so that tests run in parallel, from a directory where bin/
// holds the built binaries and examples/ is this one: the layout the
// configurations assume. It returns once GET / is answered.
func startArbiter(t *testing.T, name string) *arbiter {
	t.Helper()
	src, err := os.ReadFile(filepath.Join(examplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(portRE.FindAll(src, -1)); n != 1 {
		t.Fatalf("%s has %d port keys, want 1", name, n)
	}
	port, consolePort := testproc.FreePort(t), testproc.FreePort(t)
	endpoint := fmt.Sprintf("tcp://127.0.0.1:%d", testproc.FreePort(t))
	// Put first in the [circus] section: in Circus's dialect the first of
	// two duplicate keys wins, so these override whatever the file says.
	circus := fmt.Sprintf("[circus]\nendpoint = %s\npubsub_endpoint = tcp://127.0.0.1:%d\nhttpd_port = %d\n",
		endpoint, testproc.FreePort(t), consolePort)
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
	a := &arbiter{
		done:     make(chan struct{}),
		log:      filepath.Join(dir, "arbiter.log"),
		addr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		ini:      filepath.Join(dir, filepath.Base(name)),
		endpoint: endpoint,
		console:  fmt.Sprintf("http://127.0.0.1:%d/", consolePort),
	}
	a.url = "http://" + a.addr + "/"
	if err := os.WriteFile(a.ini, []byte(ini), 0o644); err != nil {
		t.Fatal(err)
	}
	a.start(t)

	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 2 * time.Second}
	testproc.WaitFor(t, "the arbiter to serve "+a.url, startDeadline, func() bool {
		select {
		case <-a.done:
			t.Fatalf("arbiter exited before serving: %v", a.cmd.ProcessState)
		default:
		}
		_, err := fetch(c, a.url)
		return err == nil
	})
	return a
}

// start runs the arbiter on a.ini in its directory and registers the
// cleanup that kills it.
func (a *arbiter) start(t *testing.T) {
	t.Helper()
	// A file rather than a pipe: workers share the arbiter's stdout, and a
	// pipe would stay open (and cmd.Wait blocked) for as long as any of
	// them lived.
	logf, err := os.Create(a.log)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	a.cmd = exec.Command(filepath.Join(binDir, "arbiter"), "--log-level", "debug", filepath.Base(a.ini))
	a.cmd.Dir = filepath.Dir(a.ini)
	a.cmd.Stdout, a.cmd.Stderr = logf, logf
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		a.cmd.Wait()
		close(a.done)
	}()
	// Registered after t.TempDir, so it runs before the directory goes.
	t.Cleanup(func() {
		a.kill(t)
		if t.Failed() {
			if b, err := os.ReadFile(a.log); err == nil {
				t.Logf("arbiter output:\n%s", b)
			}
		}
	})
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

// list returns the pids of the watcher's processes, sorted, as `circusctl
// list NAME` reports them (a gunicorn or uWSGI master's own workers are its
// children, not the arbiter's).
func (a *arbiter) list(t *testing.T, watcher string) []int {
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
	testproc.WaitFor(t, fmt.Sprintf("%d %s workers", n, comm), startDeadline, func() bool {
		m = a.workers(comm)
		return len(m) == n
	})
	return m
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
