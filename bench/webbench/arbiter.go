package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

const arbiterPkg = "github.com/ringmaster-dev/ringmaster/cmd/arbiter"

const (
	startTimeout = time.Minute      // config written → every watcher started, console serving
	stopTimeout  = 30 * time.Second // SIGTERM → the arbiter has exited
	keepLog      = 40               // lines of the arbiter's log kept for error messages
)

// buildArbiter builds cmd/arbiter into dir, from the module the working
// directory is in.
func buildArbiter(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "arbiter")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, arbiterPkg)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build %s: %w", arbiterPkg, err)
	}
	return bin, nil
}

// writeConfig writes the benchmark's configuration into dir: watchers
// w01... of workers `sleep 100000` each. Every endpoint is on port 0, so
// that the arbiter binds free ports itself (no race with another program
// between choosing a port and binding it); the log says which it got.
// Flapping is off, so that a fast -events-every on few watchers is not
// mistaken for a crashing program.
func writeConfig(dir string, watchers, workers int) (string, error) {
	var b strings.Builder
	b.WriteString(`[circus]
endpoint = tcp://127.0.0.1:0
pubsub_endpoint = tcp://127.0.0.1:0
httpd = true
httpd_host = 127.0.0.1
httpd_port = 0
loglevel = info
`)
	for _, name := range watcherNames(watchers) {
		fmt.Fprintf(&b, "\n[watcher:%s]\ncmd = sleep 100000\nnumprocesses = %d\ncheck_flapping = false\n", name, workers)
	}
	path := filepath.Join(dir, "webbench.ini")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("write config: %w", err)
	}
	return path, nil
}

// watcherNames are w1..wN, zero-padded so that they sort.
func watcherNames(n int) []string {
	width := len(strconv.Itoa(n))
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("w%0*d", width, i+1)
	}
	return names
}

// arbiterProc is a running arbiter binary. Its output (the log) is read
// line by line by a goroutine, which finds the addresses it bound and
// counts warnings.
type arbiterProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited and its log is read
	err  error         // cmd.Wait's, valid after done

	consoleURL, endpoint string // set before ready is closed
	ready                chan struct{}

	mu       sync.Mutex
	tail     []string // the last keepLog lines
	warnings int      // lines at level WARN or ERROR
	firstBad string   // the first of them
}

var (
	consoleLine = regexp.MustCompile(`msg="serving the web console".* url=(\S+)`)
	controlLine = regexp.MustCompile(`msg="listening for commands".* endpoint=(\S+)`)
)

// startArbiter starts bin on the configuration ini and waits until every
// watcher has started and the console serves.
func startArbiter(ctx context.Context, bin, ini string) (*arbiterProc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	a := &arbiterProc{cmd: exec.Command(bin, ini), done: make(chan struct{}), ready: make(chan struct{})}
	a.cmd.Stdout, a.cmd.Stderr = pw, pw
	// Should this program die without stopping it, the arbiter gets
	// SIGTERM and stops its workers. (Pdeathsig follows the thread that
	// forked; Go threads outlive their goroutines here, nothing locks
	// one.)
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
		// The workers hold the pipe too if they inherited it; the
		// arbiter has stopped them all before it exits.
		logDone.Wait()
		close(a.done)
	}()

	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-a.ready:
		return a, nil
	case <-a.done:
		return nil, fmt.Errorf("arbiter exited during start-up (%v); its log ends:\n%s", a.err, a.logTail())
	case <-timer.C:
		err = fmt.Errorf("arbiter not started after %v; its log ends:\n%s", startTimeout, a.logTail())
	case <-ctx.Done():
		err = ctx.Err()
	}
	if serr := a.Stop(); serr != nil {
		err = errors.Join(err, serr)
	}
	return nil, err
}

// Pid is the arbiter's process id.
func (a *arbiterProc) Pid() int { return a.cmd.Process.Pid }

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
		if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			a.warnings++
			if a.firstBad == "" {
				a.firstBad = line
			}
		}
		a.mu.Unlock()
		if started {
			continue
		}
		if m := consoleLine.FindStringSubmatch(line); m != nil {
			a.consoleURL = m[1]
		}
		if m := controlLine.FindStringSubmatch(line); m != nil {
			a.endpoint = m[1]
		}
		if strings.Contains(line, `msg="arbiter started"`) && a.consoleURL != "" && a.endpoint != "" {
			started = true
			close(a.ready)
		}
	}
}

func (a *arbiterProc) logTail() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.tail, "\n")
}

// Warnings returns how many WARN or ERROR lines the arbiter has logged so
// far, and the first of them.
func (a *arbiterProc) Warnings() (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.warnings, a.firstBad
}

// Stop sends SIGTERM and waits for the arbiter to stop its workers and
// exit; after stopTimeout it is killed and Stop reports it.
func (a *arbiterProc) Stop() error {
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

// usage is what /proc says of a process at one moment.
type usage struct {
	at    time.Time
	ticks int64 // utime + stime, in clock ticks, its threads included and its children not
}

// readUsage reads /proc/PID/stat.
func readUsage(pid int) (usage, error) {
	var r procfs.Reader
	st, err := r.Stat(pid)
	return usage{at: time.Now(), ticks: int64(st.Utime + st.Stime)}, err
}

// cpuPercent is the CPU the process used between u0 and u1, in percent of
// one core.
func cpuPercent(u0, u1 usage) float64 {
	wall := u1.at.Sub(u0.at).Seconds()
	if wall <= 0 {
		return 0
	}
	return float64(u1.ticks-u0.ticks) / procfs.ClockTicks / wall * 100
}

// readRSS returns VmRSS from /proc/PID/status, in kB.
func readRSS(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// selfCPU is this process's own CPU time so far (user + system).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the machine's 1-minute load average, "?" if unknown:
// other work on the machine shows in the latencies.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}
