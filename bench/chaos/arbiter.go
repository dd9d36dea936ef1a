package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

const module = "github.com/ringmaster-dev/ringmaster"

const (
	startTimeout = time.Minute // arbiter started → "arbiter started" logged
	keepLog      = 60          // lines of the arbiter's log kept for failure reports
)

// binaries are the programs a run starts. All of them but a -arbiter
// given on the command line live in the run's temporary directory, which
// is how leftover workers are found at the end: their argv[0] is there.
type binaries struct {
	arbiter, httpworker, testworker string
}

// build compiles what o does not provide into dir, from the module the
// working directory is in. The workers are built without cgo, as
// spawnbench and testproc build theirs: they start faster.
func build(ctx context.Context, dir, arbiter string) (binaries, error) {
	b := binaries{
		arbiter:    arbiter,
		httpworker: filepath.Join(dir, "httpworker"),
		testworker: filepath.Join(dir, "testworker"),
	}
	type target struct{ out, pkg, cgo string }
	targets := []target{
		{b.httpworker, module + "/examples/httpworker", "0"},
		{b.testworker, module + "/internal/testproc/testworker", "0"},
	}
	if arbiter == "" {
		b.arbiter = filepath.Join(dir, "arbiter")
		targets = append(targets, target{b.arbiter, module + "/cmd/arbiter", "1"})
	}
	for _, t := range targets {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", t.out, t.pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED="+t.cgo)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return b, fmt.Errorf("build %s: %w", t.pkg, err)
		}
	}
	return b, nil
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago, as
// testproc.FreePort does for tests (which needs a testing.TB): below the
// kernel's ephemeral range, so that no outgoing connection takes it before
// the arbiter binds it, and away from the fixed ports other programs on
// the machine use.
func freePort() (int, error) {
	for range 200 {
		port := 20000 + rand.N(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port found in 20000-31999")
}

// arbiterProc is the running arbiter binary. A goroutine reads its output
// (its log and its workers') line by line, keeping the tail for failure
// reports and counting warnings and finished reloads.
type arbiterProc struct {
	cmd     *exec.Cmd
	started time.Time
	ready   chan struct{} // closed when "arbiter started" is logged
	done    chan struct{} // closed when the process has exited and its log is read
	err     error         // cmd.Wait's, valid after done
	exited  time.Time     // valid after done

	mu       sync.Mutex
	tail     []string // the last keepLog lines
	warnings int      // lines at level WARN or ERROR
	firstBad string   // the first of them
	reloads  int      // "configuration reloaded" lines: reloads done
	hupFails []string // SIGHUP reloads the arbiter refused or failed, in full
	wFails   []string // watchers whose part of a reload failed, one line each
	log      *os.File // the whole log, kept for a failed run; nil: not kept
}

// startArbiter starts bin on ini and waits until it logs that it started.
// Its whole output is copied to log.
func startArbiter(ctx context.Context, bin, ini string, log *os.File) (*arbiterProc, error) {
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	a := &arbiterProc{cmd: exec.Command(bin, ini), ready: make(chan struct{}), done: make(chan struct{}), log: log}
	a.cmd.Stdout, a.cmd.Stderr = pw, pw
	// Should chaos die without stopping it (SIGKILL, a crash), the arbiter
	// gets SIGTERM and stops its workers. Pdeathsig follows the thread
	// that forked; nothing here locks one, and Go keeps its threads.
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	a.started = time.Now()
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
		a.exited = time.Now()
		// The pipe ends when the last worker that inherited it is gone
		// too; the arbiter stops every worker before it exits.
		logDone.Wait()
		close(a.done)
	}()
	timer := time.NewTimer(startTimeout)
	defer timer.Stop()
	select {
	case <-a.ready:
		return a, nil
	case <-a.done:
		return nil, fmt.Errorf("arbiter exited during start-up (%v); its log ends:\n%s", a.err, a.logTail(keepLog))
	case <-timer.C:
		err = fmt.Errorf("arbiter not started after %v; its log ends:\n%s", startTimeout, a.logTail(keepLog))
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.Kill()
	return nil, err
}

// Pid is the arbiter's process id.
func (a *arbiterProc) Pid() int { return a.cmd.Process.Pid }

// Exited reports whether the arbiter process has exited.
func (a *arbiterProc) Exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

func (a *arbiterProc) readLog(pr *os.File) {
	defer pr.Close()
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		if a.log != nil {
			fmt.Fprintln(a.log, line)
		}
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
		// cmd/arbiter logs a SIGHUP reload's failure as a whole; the
		// arbiter logs each watcher's, for reloadconfig too.
		switch {
		case strings.Contains(line, `msg="configuration reloaded"`):
			a.reloads++
		case strings.Contains(line, `msg="reload refused`), strings.Contains(line, `msg="reload failed;`):
			a.hupFails = append(a.hupFails, line)
		case strings.Contains(line, `msg="reload failed" watcher=`):
			a.wFails = append(a.wFails, line)
		}
		a.mu.Unlock()
		if !started && strings.Contains(line, `msg="arbiter started"`) {
			started = true
			close(a.ready)
		}
	}
}

// reloadLog is what the arbiter logged of reloads so far.
type reloadLog struct {
	done     int      // reloads done
	hupFails []string // SIGHUP reloads refused or failed
	wFails   []string // watchers whose part of a reload failed
}

func (a *arbiterProc) reloadLog() reloadLog {
	a.mu.Lock()
	defer a.mu.Unlock()
	return reloadLog{a.reloads, slices.Clone(a.hupFails), slices.Clone(a.wFails)}
}

// logTail returns the last n lines of the arbiter's output (at most
// keepLog).
func (a *arbiterProc) logTail(n int) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return strings.Join(a.tail[max(0, len(a.tail)-n):], "\n")
}

// Warnings returns how many WARN or ERROR lines the arbiter has logged so
// far, and the first of them.
func (a *arbiterProc) Warnings() (int, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.warnings, a.firstBad
}

// Terminate sends SIGTERM and waits up to bound for the arbiter to exit.
// It returns how long the exit took and whether it happened in time.
func (a *arbiterProc) Terminate(bound time.Duration) (time.Duration, bool) {
	t0 := time.Now()
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(bound)
	defer timer.Stop()
	select {
	case <-a.done:
		return a.exited.Sub(t0), true
	case <-timer.C:
		return time.Since(t0), false
	}
}

// Kill ends the arbiter however it is: SIGTERM, then SIGKILL after 30 s.
// Its workers get SIGKILL from their parent-death signal if it comes to
// that; killLeftovers finds any other.
func (a *arbiterProc) Kill() {
	if _, ok := a.Terminate(30 * time.Second); ok {
		return
	}
	_ = a.cmd.Process.Kill()
	// The log pipe may be held by a worker that outlived the arbiter;
	// do not wait for it for ever.
	select {
	case <-a.done:
	case <-time.After(5 * time.Second):
	}
}
