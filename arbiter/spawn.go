package arbiter

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/shlex"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// defaultPath is searched for a bare command when the worker's environment
// has no PATH (a watcher without copy_env gets only its [env] variables).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// proc is a started worker as the watcher loop sees it. The real one wraps
// os.Process (which signals through a pidfd, so a recycled pid is never
// hit); tests substitute a fake to drive the loop's timing logic.
type proc interface {
	Pid() int
	// Signal signals the worker itself.
	Signal(sig syscall.Signal) error
	// SignalGroup signals the worker's process group if the worker has
	// not been reaped (os.ErrProcessDone otherwise): the check and the
	// signal are atomic with respect to the reaper, so a group whose
	// leader's pid was freed, and maybe reused, is never hit. What a
	// worker leaves in its group when it dies, the reaper kills.
	SignalGroup(sig syscall.Signal) error
	// Release frees the handle once the worker has been reaped.
	Release()
}

// launcher starts one worker of a watcher; exits of what it starts must be
// delivered to exits. It runs on a goroutine of its own, not the
// watcher's loop, so it touches nothing the loop owns: what it needs of the
// watcher's cgroups (joins) is prepared on the loop.
type launcher interface {
	// out, when not nil, captures the worker's stdout and stderr; cg says
	// which cgroups the worker joins before anything else.
	launch(w *config.Watcher, socks []*sockets.Socket, wid int, cg spawnCgroups, exits chan<- exitStatus, out *logs.Output) (proc, error)
}

// spawnCgroups is what a spawn needs of its watcher's cgroups, prepared on
// the watcher's loop: the cgroups to join, and whether to join them
// without clone3 (a test knob, see SpawnWithoutClone3).
type spawnCgroups struct {
	joins    []cgroups.Join
	noClone3 bool
	// ticket lets the watcher kill the child while its spawn is under way.
	ticket *spawnTicket
	// guard is the guardian the child registers with (not a cgroup, but
	// prepared on the loop as these are).
	guard *guardLink
}

// execLauncher starts real processes through the process-wide reaper.
type execLauncher struct{}

func (execLauncher) launch(w *config.Watcher, socks []*sockets.Socket, wid int, cg spawnCgroups, exits chan<- exitStatus, out *logs.Output) (proc, error) {
	h, err := sockets.Prepare(socks)
	if err != nil {
		return nil, err
	}
	defer h.Close()

	env := workerEnv(w)
	// Circus's dialect ($(circus.sockets.NAME), in lookup below) is always
	// there; systemd's only where it cannot collide with it.
	systemd := len(socks) > 0 && w.SystemdDialect()
	if systemd {
		env = append(env, h.Env...)
	}
	lookup := spawnVars(w, wid, h.FDs, env)
	argv, err := workerArgv(w, lookup)
	if err != nil {
		return nil, err
	}
	exe := argv[0]
	if w.Shell {
		exe = "/bin/sh"
	} else if w.Executable != "" {
		exe = config.Expand(w.Executable, lookup)
	}
	exe, err = lookPath(exe, envValue(env, "PATH"), w.Chroot)
	if err != nil {
		return nil, err
	}

	var pipes *logs.Pipes
	if out != nil && (!w.CloseChildStdout || !w.CloseChildStderr) {
		if pipes, err = out.Pipes(!w.CloseChildStdout, !w.CloseChildStderr); err != nil {
			return nil, err
		}
	}
	files, closeFiles, err := workerFiles(w, socks, h, pipes)
	if err != nil {
		if pipes != nil {
			pipes.Abort()
		}
		return nil, err
	}
	defer closeFiles()

	attr := &spawnAttr{
		path:      exe,
		argv:      argv,
		env:       env,
		listenPID: systemd,
		files:     files,
		dir:       w.WorkingDir,
		chroot:    w.Chroot,
		umask:     w.Umask,
		nice:      w.Nice,
		rlimits:   w.Rlimits,
	}
	attr.uid, attr.gid, attr.groups, attr.setCreds = credentials(w)
	attr.cgroups, attr.noClone3, attr.guard = cg.joins, cg.noClone3, cg.guard
	p, err := spawn(attr, exits, cg.ticket)
	if pipes != nil {
		if err != nil {
			pipes.Abort()
		} else {
			pipes.Start(p.Pid())
		}
	}
	return p, err
}

// spawn forks and execs attr through the reaper, which delivers the
// child's exit to exits.
func spawn(attr *spawnAttr, exits chan<- exitStatus, t *spawnTicket) (proc, error) {
	return theReaper.startTicket(func(sp *spawning) (int, proc, error) {
		pid, pidfd, err := forkExec(attr, sp)
		if err != nil {
			return pid, nil, err
		}
		return pid, &pidfdProc{pid: pid, pidfd: pidfd, spawn: sp}, nil
	}, exits, t)
}

// credentials returns the uid and gid a worker of w runs as, the
// supplementary groups to set (nil: the arbiter's stay), and whether uid or
// gid differ from the arbiter's own.
//
// A watcher naming neither uid nor gid runs as the arbiter does, groups
// included. One naming either gets exactly w.Groups, which config resolved
// as initgroups(user, gid) (gid alone when empty, as for a uid with no
// passwd entry): Circus's initgroups, but for a gid-only watcher too, and
// for uid = root (Circus takes 0 for unset), so that no worker keeps the
// arbiter's groups by accident. Unlike Circus, which ignores a failed
// initgroups, a setgroups that fails fails the spawn; it is not asked for
// when the arbiter's groups already are those, so that an unprivileged
// arbiter can run a watcher as its own user and group.
func credentials(w *config.Watcher) (uid, gid uint32, groups []uint32, change bool) {
	uid, gid = uint32(os.Getuid()), uint32(os.Getgid())
	if w.UID < 0 && w.GID < 0 {
		return uid, gid, nil, false
	}
	if w.UID >= 0 {
		uid = uint32(w.UID)
	}
	if w.GID >= 0 {
		gid = uint32(w.GID)
	}
	change = int(uid) != os.Getuid() || int(gid) != os.Getgid()
	groups = make([]uint32, 0, max(len(w.Groups), 1))
	for _, g := range w.Groups {
		groups = append(groups, uint32(g))
	}
	if len(groups) == 0 {
		groups = append(groups, gid)
	}
	if own, err := unix.Getgroups(); err == nil && sameGroups(own, groups) {
		groups = nil
	}
	return uid, gid, groups, change
}

// sameGroups reports whether two group lists hold the same groups.
func sameGroups(own []int, want []uint32) bool {
	a := make([]uint32, len(own))
	for i, g := range own {
		a[i] = uint32(g)
	}
	b := slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

// workerEnv is the environment a worker starts with, as Circus builds it:
// the arbiter's own only with copy_env (less its service's, see
// isServiceVar), then the [env] sections, which win.
func workerEnv(w *config.Watcher) []string {
	m := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] = v
	}
	if w.CopyEnv {
		for _, kv := range os.Environ() {
			k, v, _ := strings.Cut(kv, "=")
			if !isServiceVar(k) {
				set(k, v)
			}
		}
	}
	if w.Virtualenv != "" {
		set("VIRTUAL_ENV", w.Virtualenv)
		p := filepath.Join(w.Virtualenv, "bin")
		if old := m["PATH"]; old != "" {
			p += ":" + old
		}
		set("PATH", p)
	}
	keys := make([]string, 0, len(w.Env))
	for k := range w.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		set(k, w.Env[k])
	}
	env := make([]string, 0, len(order))
	for _, k := range order {
		env = append(env, k+"="+m[k])
	}
	return env
}

// isServiceVar reports whether k is one of the variables through which a
// service manager describes the arbiter's own service (systemd.exec(5),
// "Environment Variables Set or Propagated by the Service Manager"), which
// copy_env never copies (issue 15). They are the arbiter's identity, not a
// worker's: with NOTIFY_SOCKET a worker could tell systemd that the
// arbiter is ready or stopping, with WATCHDOG_* feed or trip its
// watchdog, with LISTEN_* take the arbiter's fds for its own, with PIDFILE
// overwrite the arbiter's pid file, with FDSTORE push fds into its store;
// INVOCATION_ID (which sd_id128_get_invocation takes from the environment
// as safe only where no privilege boundary is crossed: a worker may run as
// another user), SYSTEMD_EXEC_PID, MAINPID and
// MANAGERPID name the arbiter's invocation; TRIGGER_*, MONITOR_*,
// SERVICE_RESULT, EXIT_*, and REMOTE_* describe what started it;
// MEMORY_PRESSURE_* name the memory.pressure file of its service's
// cgroup, which is not the cgroup of a worker the arbiter gives one.
// A watcher's [env] may still set any of them by name; a worker with ready
// = notify gets its own NOTIFY_SOCKET and WATCHDOG_USEC (notifyEnv), one
// with sockets its own LISTEN_* (sockets.Handoff).
//
// Passed on, as configuration of the service its workers are part of:
// PATH, LANG, HOME, USER and the like; the RuntimeDirectory= family
// (RUNTIME_DIRECTORY, STATE_DIRECTORY...) and CREDENTIALS_DIRECTORY
// (readable by the service's user alone in any case); LOG_NAMESPACE; and
// JOURNAL_STREAM, which names the device and inode of the arbiter's
// output stream and which its readers check against their own fds (as
// systemd.exec(5) has them do): true for a worker whose
// output goes to the arbiter's own, found false by one whose output the
// arbiter captures.
//
// Only these exact names: an application's own LISTEN_PORT or
// TRIGGER_URL passes.
func isServiceVar(k string) bool {
	switch k {
	case "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC",
		"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
		"PIDFILE", "FDSTORE",
		"INVOCATION_ID", "SYSTEMD_EXEC_PID", "MAINPID", "MANAGERPID",
		"TRIGGER_UNIT", "TRIGGER_PATH", "TRIGGER_TIMER_REALTIME_USEC", "TRIGGER_TIMER_MONOTONIC_USEC",
		"MONITOR_SERVICE_RESULT", "MONITOR_EXIT_CODE", "MONITOR_EXIT_STATUS", "MONITOR_INVOCATION_ID", "MONITOR_UNIT",
		"SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS",
		"REMOTE_ADDR", "REMOTE_PORT",
		"MEMORY_PRESSURE_WATCH", "MEMORY_PRESSURE_WRITE":
		return true
	}
	return false
}

func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// spawnVars resolves the $(circus.X) variables Circus substitutes at spawn
// time in cmd, args and shell_args.
func spawnVars(w *config.Watcher, wid int, fds map[string]int, env []string) func(string) (string, bool) {
	return func(key string) (string, bool) {
		switch {
		case key == "wid":
			return strconv.Itoa(wid), true
		case strings.HasPrefix(key, "sockets."):
			fd, ok := fds[strings.TrimPrefix(key, "sockets.")]
			return strconv.Itoa(fd), ok
		case strings.HasPrefix(key, "env."):
			name := strings.TrimPrefix(key, "env.")
			for _, kv := range env {
				if k, v, ok := strings.Cut(kv, "="); ok && strings.EqualFold(k, name) {
					return v, true
				}
			}
			return "", false
		}
		for k, v := range w.Options {
			if strings.EqualFold(k, key) {
				return v, true
			}
		}
		return "", false
	}
}

// workerArgv builds argv as Circus does: cmd and args substituted and
// shlex-split; with shell, everything joined into one sh -c string followed
// by shell_args.
func workerArgv(w *config.Watcher, lookup func(string) (string, bool)) ([]string, error) {
	argv, err := shlex.Split(config.Expand(w.Cmd, lookup))
	if err != nil {
		return nil, fmt.Errorf("cmd %q: %w", w.Cmd, err)
	}
	if w.Args != "" {
		more, err := shlex.Split(config.Expand(w.Args, lookup))
		if err != nil {
			return nil, fmt.Errorf("args %q: %w", w.Args, err)
		}
		argv = append(argv, more...)
	}
	if len(argv) == 0 {
		return nil, fmt.Errorf("cmd %q is empty", w.Cmd)
	}
	if !w.Shell {
		return argv, nil
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = shlex.Quote(a)
	}
	sh := []string{"/bin/sh", "-c", strings.Join(quoted, " ")}
	if w.ShellArgs != "" {
		sh = append(sh, strings.Fields(config.Expand(w.ShellArgs, lookup))...)
	}
	return sh, nil
}

// lookPath finds a bare command in the worker's PATH (inside its chroot, if
// any), so that a missing program fails the spawn with a clear error rather
// than a child that dies at once. Paths with a slash are left to execve,
// relative to the working directory, as Circus does.
func lookPath(exe, path, chroot string) (string, error) {
	if strings.Contains(exe, "/") {
		return exe, nil
	}
	if path == "" {
		path = defaultPath
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, exe)
		if fi, err := os.Stat(filepath.Join(chroot, p)); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: not found in PATH %q", exe, path)
}

// workerFiles returns fds 0.. of a worker: stdio, then its sockets from fd
// 3. Output goes to pipes when captured; where it is not, to /dev/null if
// close_child_* says so, or else to the arbiter's own.
func workerFiles(w *config.Watcher, socks []*sockets.Socket, h *sockets.Handoff, pipes *logs.Pipes) ([]*os.File, func(), error) {
	var opened []*os.File
	closeAll := func() {
		for _, f := range opened {
			f.Close()
		}
	}
	devnull := func() (*os.File, error) {
		f, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err == nil {
			opened = append(opened, f)
		}
		return f, err
	}
	files := make([]*os.File, 3, 3+len(h.Files))
	var err error
	switch {
	case w.StdinSocket != "":
		for i, s := range socks {
			if s.Name() == w.StdinSocket {
				files[0] = h.Files[i]
			}
		}
		if files[0] == nil {
			return nil, closeAll, fmt.Errorf("stdin_socket %q: no such socket", w.StdinSocket)
		}
	case w.CloseChildStdin:
		files[0], err = devnull()
	default:
		files[0] = os.Stdin
	}
	for i, s := range []struct {
		stream logs.Stream
		closed bool
		own    *os.File
	}{{logs.Stdout, w.CloseChildStdout, os.Stdout}, {logs.Stderr, w.CloseChildStderr, os.Stderr}} {
		switch {
		case err != nil:
		case s.closed:
			files[1+i], err = devnull()
		case pipes != nil && pipes.Writer(s.stream) != nil:
			files[1+i] = pipes.Writer(s.stream)
		default:
			files[1+i] = s.own
		}
	}
	if err != nil {
		closeAll()
		return nil, func() {}, err
	}
	files = append(files, h.Files...)
	return files, closeAll, nil
}
