package arbiter

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/shlex"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// A command is a short-lived program the arbiter runs on a watcher's
// behalf: a hook, or a health.cmd check. It is started as a worker is,
// forked on a spawner thread and reaped by the one reaper (nothing here
// waits for a child: the reaper's waitid(P_ALL) would take the exit
// first), in a process group of its own, so that a timeout kills whatever
// it started.
// It runs as the watcher's user, in its working_dir, with the worker's
// environment plus variables that describe the occasion; not in its chroot,
// nor with its rlimits, umask or nice, which describe a worker. Its argv is
// split as cmd is (shlex) and executed without a shell, whatever the
// watcher's shell option says: that option is about how the worker's cmd
// runs, and a hook's meaning must not change with it. A command that wants
// a shell says so: /bin/sh -c '...'.

const (
	// commandOutputMax is how much of a command's output is kept: its
	// tail, for the log and a failure's reason.
	commandOutputMax = 4 << 10
	// commandKillWait bounds the wait for the exit of a command that was
	// sent SIGKILL; only a process stuck in the kernel takes longer.
	commandKillWait = 5 * time.Second
	// commandDrain is how long output is still read once the command and
	// its group are gone: only a descendant that left the group (setsid)
	// can still hold the pipe, and nothing waits for it.
	commandDrain = 100 * time.Millisecond
	// reasonMax bounds the output quoted in a failure's reason.
	reasonMax = 512
)

// command is one prepared run. Its fields are read only.
type command struct {
	argv     []string
	path     string // argv[0] resolved in the environment's PATH
	env      []string
	dir      string
	uid, gid uint32
	groups   []uint32
	setCreds bool
	timeout  time.Duration
	guard    *guardLink // the arbiter's guardian, which the command registers with as a worker does
}

// newCommand prepares line, already substituted, to run for a watcher of
// w, with vars (KEY=VALUE) set in its environment over the worker's.
func newCommand(w *config.Watcher, line string, vars []string, timeout time.Duration) (*command, error) {
	argv, err := shlex.Split(line)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", line, err)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("%q is empty", line)
	}
	env := withVars(workerEnv(w), vars)
	path, err := lookPath(argv[0], envValue(env, "PATH"), "")
	if err != nil {
		return nil, err
	}
	c := &command{argv: argv, path: path, env: env, dir: w.WorkingDir, timeout: timeout}
	c.uid, c.gid, c.groups, c.setCreds = credentials(w)
	return c, nil
}

// withVars returns env with vars set: a variable of env with the same name
// is dropped, since getenv returns the first of duplicates.
func withVars(env, vars []string) []string {
	names := make(map[string]bool, len(vars))
	for _, kv := range vars {
		k, _, _ := strings.Cut(kv, "=")
		names[k] = true
	}
	env = slices.DeleteFunc(env, func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return names[k]
	})
	return append(env, vars...)
}

// run starts the command and waits for its end, at most its timeout, after
// which (or when ctx is done) its process group gets SIGKILL. Whatever the
// command left running in its group is killed when it exits, as a
// worker's is. run returns the tail of the command's stdout and stderr,
// and nil if it exited 0; otherwise an error saying how it ended ("exit
// status 3", "killed by SIGSEGV", "timed out after 2s") followed by the
// last line of its output.
func (c *command) run(ctx context.Context) ([]byte, error) {
	r, wr, err := logs.Pipe()
	if err != nil {
		return nil, err
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		r.Close()
		wr.Close()
		return nil, err
	}
	attr := &spawnAttr{
		path:     c.path,
		argv:     c.argv,
		env:      c.env,
		files:    []*os.File{devnull, wr, wr},
		dir:      c.dir,
		umask:    -1,
		setCreds: c.setCreds,
		uid:      c.uid,
		gid:      c.gid,
		groups:   c.groups,
		guard:    c.guard,
	}
	// One exit and a buffer for it: the reaper never blocks on us, even
	// when we have stopped waiting.
	exits := make(chan exitStatus, 1)
	p, err := spawn(attr, exits, nil)
	// The child has its own copies; ours would keep the pipe open.
	wr.Close()
	devnull.Close()
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("start: %w", err)
	}
	defer p.Release()

	out := &tailBuffer{max: commandOutputMax}
	read := make(chan struct{})
	go func() {
		defer close(read)
		_, _ = io.Copy(out, r)
	}()

	t := time.NewTimer(c.timeout)
	defer t.Stop()
	var (
		st     exitStatus
		exited bool
	)
	select {
	case st = <-exits:
		exited = true
	case <-t.C:
		err = fmt.Errorf("timed out after %s", c.timeout)
	case <-ctx.Done():
		err = ctx.Err()
	}
	// What it left in its group when it exited, the reaper killed before
	// reaping it; a group whose leader runs on is killed here (nothing if
	// it has been reaped meanwhile: its pid may be someone else's).
	if !exited {
		_ = p.SignalGroup(syscall.SIGKILL)
		kt := time.NewTimer(commandKillWait)
		select {
		case <-exits:
		case <-kt.C:
			err = fmt.Errorf("%w; still not gone %s after SIGKILL", err, commandKillWait)
		}
		kt.Stop()
	}
	_ = r.SetReadDeadline(time.Now().Add(commandDrain))
	<-read
	r.Close()

	if err == nil {
		switch ws := st.status; {
		case ws.Signaled():
			err = fmt.Errorf("killed by %s", unix.SignalName(ws.Signal()))
		case ws.ExitStatus() != 0:
			err = fmt.Errorf("exit status %d", ws.ExitStatus())
		}
	}
	if err != nil {
		if last := lastLine(out.b); last != "" {
			err = fmt.Errorf("%w: %s", err, last)
		}
	}
	return out.b, err
}

// tailBuffer keeps the last max bytes written to it. It is written by one
// goroutine and read once that one is done.
type tailBuffer struct {
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

// lastLine is the last non-empty line of out, at most reasonMax bytes of
// it, as valid UTF-8: what a failing command says last is usually why.
func lastLine(out []byte) string {
	s := strings.TrimRight(string(out), " \t\r\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > reasonMax {
		s = s[len(s)-reasonMax:]
		for len(s) > 0 && !utf8.RuneStart(s[0]) {
			s = s[1:]
		}
		s = "..." + s
	}
	return strings.ToValidUTF8(strings.TrimSpace(s), "\uFFFD")
}

// checkCmd is one health.cmd check of the worker pid: h.Cmd with the
// check's substitutions (lookup), run with the worker's identity in its
// environment and h.Timeout to exit 0. It runs on the worker's check
// goroutine, so a hung one holds up only that worker's next check.
func (w *Watcher) checkCmd(ctx context.Context, h config.Health, pid int, lookup func(string) (string, bool)) error {
	wid, _ := lookup("wid")
	vars := []string{"CIRCUS_WATCHER=" + w.name, "CIRCUS_PID=" + strconv.Itoa(pid), "CIRCUS_WID=" + wid}
	c, err := newCommand(w.Config(), config.Expand(h.Cmd, lookup), vars, h.Timeout)
	if err != nil {
		return err
	}
	c.guard = w.guard
	_, err = c.run(ctx)
	return err
}

// RunProgram runs path with args as the arbiter runs a hook (forked on a
// spawner thread, reaped by the one reaper, registered with the guardian,
// its group killed once it exits or after timeout), in the arbiter's own
// environment and directory, and returns the tail of its stdout and
// stderr, with an error saying how it ended unless it exited 0. A program
// embedding the package must run children so while an Arbiter runs: one
// it waits for itself, the reaper may reap first.
func (a *Arbiter) RunProgram(ctx context.Context, path string, args []string, timeout time.Duration) ([]byte, error) {
	c := &command{
		argv: append([]string{path}, args...), path: path, env: os.Environ(),
		uid: uint32(os.Getuid()), gid: uint32(os.Getgid()), timeout: timeout, guard: a.glink,
	}
	return c.run(ctx)
}
