package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	startTimeout = 2 * time.Minute  // config written → every worker started
	stopTimeout  = 60 * time.Second // SIGTERM → the arbiter has exited
	keepLog      = 40               // lines of the arbiter's log kept for error messages
)

// build builds pkg (a package path of this module) into dir as name.
func build(ctx context.Context, dir, name, pkg string) (string, error) {
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", pkg, err)
	}
	return bin, nil
}

// install copies src to dst through a temporary name renamed over it, as a
// package manager replaces a binary, and returns dst's new inode: each
// round's exec is of another file, so that /proc/PID/exe tells when it
// happened.
func install(src, dst string) (uint64, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(dst+".new", b, 0o755); err != nil {
		return 0, err
	}
	if err := os.Rename(dst+".new", dst); err != nil {
		return 0, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dst, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// exeInode is the inode of the program pid runs now.
func exeInode(pid int) uint64 {
	var st syscall.Stat_t
	if syscall.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st) != nil {
		return 0
	}
	return st.Ino
}

// config is the benchmark's arbiter: watchers pool1..poolW of /bin/sleep
// sharing n workers, each with a unix socket of its own (handed over like
// any other), and web: 4 HTTP workers on a TCP socket that the load hits.
// Every endpoint is on a fixed loopback port chosen by the caller, or in
// dir, so that a probe knows where to knock before the log says.
type config struct {
	dir                         string
	workers, watchers           int
	httpworker                  string
	httpPort, pubPort, conPort  int
	control, pubsub, consoleURL string
}

func (c *config) write() (string, error) {
	c.control = "ipc://" + filepath.Join(c.dir, "control.sock")
	c.pubsub = fmt.Sprintf("tcp://127.0.0.1:%d", c.pubPort)
	c.consoleURL = fmt.Sprintf("http://127.0.0.1:%d/", c.conPort)
	var b strings.Builder
	fmt.Fprintf(&b, `[circus]
endpoint = %s
pubsub_endpoint = %s
httpd = true
httpd_host = 127.0.0.1
httpd_port = %d
loglevel = info

[socket:web]
host = 127.0.0.1
port = %d

[watcher:web]
cmd = %s --fd $(circus.sockets.web) --drain 10s
numprocesses = 4
`, c.control, c.pubsub, c.conPort, c.httpPort, c.httpworker)
	for i := range c.watchers {
		n := c.workers / c.watchers
		if i < c.workers%c.watchers {
			n++
		}
		fmt.Fprintf(&b, `
[socket:pool%[1]d]
path = %[2]s/pool%[1]d.sock

[watcher:pool%[1]d]
cmd = /bin/sleep 100000
numprocesses = %[3]d
use_sockets = true
check_flapping = false
close_child_stdout = true
close_child_stderr = true
`, i+1, c.dir, n)
	}
	path := filepath.Join(c.dir, "upgradebench.ini")
	return path, os.WriteFile(path, []byte(b.String()), 0o644)
}

// arbiterProc is the running arbiter; a goroutine reads its log.
type arbiterProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once it exited and its log is read
	err  error         // cmd.Wait's, valid after done

	started chan struct{} // closed at "arbiter started"

	mu       sync.Mutex
	tail     []string // the last keepLog lines
	upgrades []string // the "upgraded" lines
	failures []string // the "upgrade failed" lines
}

var (
	upgradedLine = regexp.MustCompile(`msg="?upgraded\b`)
	failedLine   = regexp.MustCompile(`msg="upgrade failed\b`)
	tookField    = regexp.MustCompile(`\btook=(\S+)`)
)

// start runs bin on ini and waits until every watcher has started.
func start(ctx context.Context, bin, ini string) (*arbiterProc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	a := &arbiterProc{cmd: exec.Command(bin, ini), done: make(chan struct{}), started: make(chan struct{})}
	a.cmd.Stdout, a.cmd.Stderr = pw, pw
	// Should this program die without stopping it, the arbiter gets
	// SIGTERM and stops its workers (the signal survives its execs).
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	err = a.cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	var logDone sync.WaitGroup
	logDone.Go(func() { a.readLog(pr) })
	go func() {
		a.err = a.cmd.Wait()
		logDone.Wait()
		close(a.done)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-a.started:
		return a, nil
	case <-a.done:
		return nil, fmt.Errorf("arbiter exited during start-up (%v); its log ends:\n%s", a.err, a.logTail())
	case <-timer.C:
		err = fmt.Errorf("arbiter not started after %v; its log ends:\n%s", startTimeout, a.logTail())
	case <-ctx.Done():
		err = ctx.Err()
	}
	if serr := a.stop(); serr != nil {
		err = fmt.Errorf("%w; %w", err, serr)
	}
	return nil, err
}

func (a *arbiterProc) pid() int { return a.cmd.Process.Pid }

func (a *arbiterProc) readLog(pr *os.File) {
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		a.mu.Lock()
		if len(a.tail) == keepLog {
			a.tail = append(a.tail[:0], a.tail[1:]...)
		}
		a.tail = append(a.tail, line)
		if upgradedLine.MatchString(line) {
			a.upgrades = append(a.upgrades, line)
		}
		if failedLine.MatchString(line) {
			a.failures = append(a.failures, line)
		}
		a.mu.Unlock()
		if !started && strings.Contains(line, `msg="arbiter started"`) {
			started = true
			close(a.started)
		}
	}
}

// took is what the last "upgraded" line says the hand-over took, from the
// request to the new image running (took=...), 0 if it does not say.
func (a *arbiterProc) took() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.upgrades) == 0 {
		return 0
	}
	m := tookField.FindStringSubmatch(a.upgrades[len(a.upgrades)-1])
	if m == nil {
		return 0
	}
	d, _ := time.ParseDuration(m[1])
	return d
}

// logged returns how many "upgraded" and "upgrade failed" lines the
// arbiter has logged, and the last failure.
func (a *arbiterProc) logged() (upgrades, failures int, lastFailure string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.failures) > 0 {
		lastFailure = a.failures[len(a.failures)-1]
	}
	return len(a.upgrades), len(a.failures), lastFailure
}

func (a *arbiterProc) logTail() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.tail, "\n")
}

// stop sends SIGTERM and waits for the arbiter to stop its workers and
// exit; after stopTimeout it kills it and says so.
func (a *arbiterProc) stop() error {
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-a.done:
		if a.err != nil {
			return fmt.Errorf("arbiter exited with %w after SIGTERM; its log ends:\n%s", a.err, a.logTail())
		}
		return nil
	case <-timer.C:
		_ = a.cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("arbiter still running %v after SIGTERM: killed, its workers may be left", stopTimeout)
	}
}
