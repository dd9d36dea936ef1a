package config

import "strings"

// watcherKeys are the watcher keys Circus or Ringmaster give a meaning; the
// prefixed families (rlimit_, stdout_stream., stderr_stream., hooks.) are
// matched separately. Any other key is free-form, as in Circus: kept in
// Options for plugins and $(circus.KEY), and warned about only when it looks
// like a typo of one of these.
var watcherKeys = []string{
	"cmd", "args", "shell", "shell_args", "executable", "working_dir", "uid", "gid",
	"copy_env", "copy_path", "virtualenv", "virtualenv_py_ver", "numprocesses",
	"warmup_delay", "autostart", "respawn", "singleton", "on_demand", "priority",
	"max_retry", "restart_delay", "restart_max_delay", "graceful_timeout", "stop_signal", "stop_children", "send_hup",
	"max_age", "max_age_variance", "use_sockets", "listen_fds", "stdin_socket", "close_child_stdin",
	"close_child_stdout", "close_child_stderr", "umask", "nice", "chroot",
	"check_flapping", "flapping.attempts", "flapping.window", "flapping.retry_in",
	"flapping.max_retry", "flapping.active",
	"health.url", "health.body", "health.tcp", "health.cmd", "health.interval", "health.timeout", "health.failures",
	"hook_timeout",
	"ready", "ready_timeout", "watchdog_sec",
	"limit.max_rss", "limit.max_cpu", "limit.grace", "limit.interval",
	"cgroup", "cgroup.memory_max", "cgroup.pids_max", "cgroup.cpu_quota",
	"autoscale.min", "autoscale.max", "autoscale.idle", "autoscale.down_interval", "autoscale.up_after", "autoscale.queue_per_worker",
	"critical",
}

// readWatcher reads one [watcher:NAME] section; flap is the limit set by a
// Flapping plugin (or the default).
func readWatcher(f *fields, name string, flap flapping) *Watcher {
	w := DefaultWatcher(name)
	known := map[string]bool{}
	for _, k := range watcherKeys {
		known[k] = true
	}
	for _, k := range f.sec.keys {
		v := f.vals[k.name]
		w.Options[k.name] = v
		switch {
		case strings.HasPrefix(k.name, "rlimit_"):
			if r, ok := f.rlimit(k.name); ok {
				w.Rlimits = append(w.Rlimits, r)
			}
		case strings.HasPrefix(k.name, "stdout_stream."):
			w.StdoutStream[strings.TrimPrefix(k.name, "stdout_stream.")] = v
		case strings.HasPrefix(k.name, "stderr_stream."):
			w.StderrStream[strings.TrimPrefix(k.name, "stderr_stream.")] = v
		case strings.HasPrefix(k.name, "hooks."):
			f.hook(w, k.name)
		case !known[k.name]:
			if s, ok := closest(k.name, watcherKeys); ok {
				f.warnf(k.name, "unknown key, kept as a free-form option; did you mean %s?", s)
			}
		}
	}

	f.str("cmd", &w.Cmd)
	f.str("args", &w.Args)
	f.boolean("shell", &w.Shell)
	f.str("shell_args", &w.ShellArgs)
	f.str("executable", &w.Executable)
	f.str("working_dir", &w.WorkingDir)
	f.str("uid", &w.User)
	f.str("gid", &w.Group)
	f.boolean("copy_env", &w.CopyEnv)
	f.boolean("copy_path", &w.CopyPath)
	f.str("virtualenv", &w.Virtualenv)
	f.str("virtualenv_py_ver", &w.VirtualenvPyVer)
	f.integer("numprocesses", &w.NumProcesses, 0, maxInt)
	// Circus reads warmup_delay as an int and refuses 0.5; a float is
	// what anyone means, so it is accepted.
	f.seconds("warmup_delay", &w.WarmupDelay, false)
	f.boolean("autostart", &w.Autostart)
	f.boolean("respawn", &w.Respawn)
	f.boolean("singleton", &w.Singleton)
	f.boolean("on_demand", &w.OnDemand)
	f.boolean("critical", &w.Critical)
	f.integer("priority", &w.Priority, -maxInt, maxInt)
	f.integer("max_retry", &w.MaxRetry, -1, maxInt)
	f.seconds("restart_delay", &w.RestartDelay, false)
	f.seconds("restart_max_delay", &w.RestartMaxDelay, false)
	f.seconds("graceful_timeout", &w.GracefulTimeout, false)
	f.signal("stop_signal", &w.StopSignal)
	f.boolean("stop_children", &w.StopChildren)
	f.boolean("send_hup", &w.SendHup)
	f.seconds("max_age", &w.MaxAge, false)
	f.seconds("max_age_variance", &w.MaxAgeVariance, false)
	f.boolean("use_sockets", &w.UseSockets)
	if v, ok := f.get("stdin_socket"); ok {
		w.StdinSocket = strings.ToLower(v)
	}
	f.readListenFDs(w)
	f.boolean("close_child_stdin", &w.CloseChildStdin)
	f.boolean("close_child_stdout", &w.CloseChildStdout)
	f.boolean("close_child_stderr", &w.CloseChildStderr)
	f.umask("umask", &w.Umask)
	f.integer("nice", &w.Nice, -20, 19)
	f.str("chroot", &w.Chroot)
	f.readHealth(&w.Health)
	f.readReady(w)
	f.readCgroup(&w.Cgroup)
	f.readAutoscale(w)

	w.Stdout = f.stream("stdout_stream.", w.StdoutStream)
	w.Stderr = f.stream("stderr_stream.", w.StderrStream)

	flap.read(f, "flapping.")
	check := true
	f.boolean("check_flapping", &check)
	f.boolean("flapping.active", &check)
	if !check {
		flap.attempts = 0
	}
	w.FlapAttempts, w.FlapWindow, w.FlapRetryIn, w.FlapMaxRetry = flap.attempts, flap.window, flap.retryIn, flap.maxRetry

	f.checkWatcher(w)
	f.checkCritical(w)
	f.resolveIdentity(w)
	return w
}

// checkWatcher reports the combinations Circus refuses when it creates the
// watcher, here at load time so that they come with a line number.
func (f *fields) checkWatcher(w *Watcher) {
	if strings.TrimSpace(w.Cmd) == "" {
		if _, ok := f.get("cmd"); ok {
			f.errorf("cmd", "empty: name the program to run")
		} else {
			f.errorf("cmd", "missing: name the program to run")
		}
	}
	if w.Singleton && w.NumProcesses > 1 {
		f.errorf("numprocesses", "%d with singleton = true: a singleton runs at most 1 process", w.NumProcesses)
	}
	if w.CopyPath && !w.CopyEnv {
		f.errorf("copy_path", "needs copy_env = true")
	}
	if w.Virtualenv != "" && !w.CopyEnv {
		f.errorf("virtualenv", "needs copy_env = true")
	}
	if w.CloseChildStdout && w.Stdout.Class != "" {
		f.warnf("close_child_stdout", "the worker's stdout goes to /dev/null: stdout_stream is not used")
	}
	if w.CloseChildStderr && w.Stderr.Class != "" {
		f.warnf("close_child_stderr", "the worker's stderr goes to /dev/null: stderr_stream is not used")
	}
	if t := strings.ToLower(w.Health.Target()); strings.Contains(t, "circus.sockets.") && !strings.Contains(t, "wid") && w.NumProcesses > 1 {
		f.warnf(w.Health.Key(), "checks a socket all %d workers share: any worker may answer, so a hung one can go unseen and a healthy one be replaced; give each worker its own port with $(circus.wid)", w.NumProcesses)
	}
	if w.Chroot != "" && !strings.HasPrefix(w.Chroot, "/") {
		f.errorf("chroot", "%q is not an absolute path", w.Chroot)
	}
}
