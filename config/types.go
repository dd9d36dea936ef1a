package config

import (
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Config is one loaded Circus configuration: the main file and its includes.
// Every field is plain data with Circus's defaults applied (see [Defaults]);
// substitutions that Circus performs at load time ($(circus.env.X)) are done,
// those it performs at spawn time ($(circus.wid), $(circus.sockets.NAME)) are
// left for [Expand].
type Config struct {
	// File is the path of the main file, as given to [Load].
	File string
	// Files are the files read: the main file, then its includes in the
	// order read (their keys lose to those read before).
	Files []string
	// Sources are those files' contents as read, for an upgrade in place
	// to rebuild this very configuration ([LoadSources]) whatever the
	// disk holds by then.
	Sources []Source
	// Circus holds the [circus] section.
	Circus Circus
	// Watchers are the [watcher:NAME] sections in file order.
	Watchers []*Watcher
	// Sockets are the [socket:NAME] sections in file order; a child's fds
	// follow this order.
	Sockets []sockets.Spec
	// Plugins are the [plugin:NAME] sections in file order.
	Plugins []*Plugin
	// Env is the [env] section, applied to every watcher.
	Env map[string]string
	// Warnings are problems that do not stop the arbiter: unknown keys,
	// options parsed but not yet acted upon.
	Warnings []*Error

	// pos maps "section\x00key" (and "section\x00" for the header) to where
	// it was read, so that errors found later (a port in use at bind time)
	// can still name the file and line.
	pos map[string]Position
}

// Position is where a section header or key was read.
type Position struct {
	File string
	Line int
}

// Circus is the [circus] section.
type Circus struct {
	Endpoint          string // default tcp://127.0.0.1:5555
	EndpointOwner     string
	PubsubEndpoint    string // default tcp://127.0.0.1:5556
	StatsEndpoint     string // default tcp://127.0.0.1:5557
	Statsd            bool   // forced true when stats_endpoint is set, as Circus does
	MulticastEndpoint string // kept for compatibility; Ringmaster never enables multicast discovery
	CheckDelay        time.Duration
	WarmupDelay       time.Duration // between successive watchers at start
	Include           []string
	IncludeDir        []string
	Umask             int // -1 when unset
	Httpd             bool
	HttpdHost         string // default localhost
	HttpdPort         int    // default 8080; 0 picks a free port
	// HttpdAuth is httpd_auth, "USER:PASSWORD" for HTTP Basic
	// authentication of the console; required when it listens beyond
	// loopback.
	HttpdAuth string
	// Metrics, MetricsHost and MetricsPort are metrics, metrics_host
	// (default localhost) and metrics_port (default 5558; 0 picks a free
	// port): a listener of its own for /metrics, /healthz and /readyz.
	Metrics      bool
	MetricsHost  string
	MetricsPort  int
	Debug        bool
	DebugGC      bool
	Pidfile      string
	LogLevel     string // default info
	LogOutput    string // default "-"
	LogFormat    string // Ringmaster's: text (default) or json
	LoggerConfig string
	FQDNPrefix   string
	// Access is who may drive the control endpoint and the console.
	Access Access
	// Options holds every key of the section as written (after
	// substitution), for `globaloptions` and for keys we do not know.
	Options map[string]string
}

// Watcher is one [watcher:NAME] section.
type Watcher struct {
	Name       string
	Cmd        string // required; shlex-split at spawn after substitution
	Args       string
	Shell      bool
	ShellArgs  string
	Executable string
	WorkingDir string // "" means the arbiter's working directory

	// User and Group are the raw uid/gid values; UID, GID and Groups are
	// them resolved at load time. UID and GID are -1 when unset (run as the
	// arbiter's); GID defaults to the user's primary group. Groups are the
	// worker's supplementary groups, as initgroups(user, GID) sets them:
	// GID and the groups that list the user as a member (the arbiter's own
	// user when only gid is set; GID alone for a uid with no passwd entry).
	// Groups is nil when neither uid nor gid is set: the worker keeps the
	// arbiter's groups. A Watcher built without Groups but with UID or GID
	// gets GID alone.
	User   string
	Group  string
	UID    int
	GID    int
	Groups []int

	CopyEnv         bool
	CopyPath        bool
	Virtualenv      string
	VirtualenvPyVer string
	// Env is the merged environment of [env] and every matching
	// [env:PATTERNS] section (later sections win), not yet including the
	// arbiter's environment (copy_env is applied at spawn).
	Env map[string]string

	NumProcesses int // default 1
	WarmupDelay  time.Duration
	Autostart    bool // default true
	Respawn      bool // default true
	Singleton    bool
	OnDemand     bool
	Priority     int
	MaxRetry     int // default 5; -1 = forever
	// Critical makes the watcher's giving up (the flapping limit's
	// max_retry, or max_retry failed spawns in a row) stop the whole
	// arbiter, which then exits with an error naming it: a container or
	// unit whose main job is dead is restarted by its own supervisor.
	Critical bool
	// RestartDelay and RestartMaxDelay pace a crash loop (Ringmaster's,
	// after systemd's RestartSec and RestartMaxDelaySec): a worker that
	// dies unexpectedly is replaced at once, but the n-th death in a row
	// of its slot, each within 1 s of its start and not by SIGKILL, waits RestartDelay ×
	// 2^(n-2), at most RestartMaxDelay. Default 0.1 s; RestartMaxDelay 0
	// means 1 s, or the flapping window / attempts if less (so that the
	// flapping limit still acts as Circus's does).
	RestartDelay     time.Duration
	RestartMaxDelay  time.Duration
	GracefulTimeout  time.Duration // default 30s
	StopSignal       syscall.Signal
	StopChildren     bool
	SendHup          bool
	MaxAge           time.Duration
	MaxAgeVariance   time.Duration // default 30s
	UseSockets       bool
	ListenFDs        ListenFDs // listen_fds; see [Watcher.SystemdDialect]
	StdinSocket      string
	CloseChildStdin  bool // default true
	CloseChildStdout bool
	CloseChildStderr bool

	// Ringmaster's own process-state options (chpst-like), beyond Circus.
	Umask  int    // -1 when unset; octal in the file
	Nice   int    // 0 = unchanged
	Chroot string // "" = none

	// Rlimits are the rlimit_* keys, in file order.
	Rlimits []Rlimit

	// Flapping limit: more than FlapAttempts unexpected deaths within
	// FlapWindow stop the watcher; it is started again after FlapRetryIn,
	// at most FlapMaxRetry times (-1 = forever). Read from flapping.* keys
	// or a [plugin:x] use = circus.plugins.flapping.Flapping section.
	FlapAttempts int
	FlapWindow   time.Duration
	FlapRetryIn  time.Duration
	FlapMaxRetry int

	// StdoutStream and StderrStream are the stdout_stream.* and
	// stderr_stream.* keys as written, without the prefix: what Circus's
	// options command reports. Stdout and Stderr are the same, read.
	StdoutStream map[string]string
	StderrStream map[string]string
	Stdout       Stream
	Stderr       Stream
	// Health is the health check (health.* keys).
	Health Health
	// Ready says when a new worker is ready (ready, ready_timeout,
	// watchdog_sec).
	Ready Ready
	// Limits are the limit.* keys.
	Limits Limits

	// Cgroup is the watcher's cgroup and its limits (cgroup, cgroup.*
	// keys).
	Cgroup Cgroup

	// Autoscale resizes the pool from its sockets' accept queues
	// (autoscale.* keys).
	Autoscale Autoscale

	// ReadyzMin is readyz_min: the ready workers /readyz waits for, when
	// fewer than the target will do; -1 (the default) means the target.
	ReadyzMin int

	// Hooks are the hooks.* keys.
	Hooks map[string]Hook

	// Options holds every key of the section as written (after load-time
	// substitution): the source of $(circus.<key>) at spawn, and of
	// free-form keys for plugins.
	Options map[string]string
}

// Rlimit is one rlimit_NAME key. Infinity is represented by
// unix.RLIM_INFINITY (an empty value in the file).
type Rlimit struct {
	Name     string // lower-case, without the rlimit_ prefix: "nofile"
	Resource int    // unix.RLIMIT_*
	Value    uint64
}

// Hook is one hooks.NAME key, hooks.NAME = COMMAND[, IGNORE_ERRORS], as
// Circus writes it.
type Hook struct {
	// Command is the value without its flag: a command line, shlex-split
	// as cmd is and run without a shell; or, when Python is set, Circus's
	// dotted Python callable.
	Command string
	// Python marks a dotted name (pkg.module.func) that is no program on
	// PATH: Circus's Python hook, which Ringmaster cannot run. It is kept
	// for the record and never run.
	Python bool
	// IgnoreErrors is the flag: the hook's failure vetoes nothing.
	IgnoreErrors bool
	// Timeout is hook_timeout (default 30 s): the hook's process group is
	// killed after it, and the run counts as failed.
	Timeout time.Duration
}

// Plugin is one [plugin:NAME] section.
type Plugin struct {
	Name    string
	Use     string
	Options map[string]string
}

// Stream is where one of a watcher's output streams goes: Circus's
// stdout_stream.* or stderr_stream.* keys, read and checked.
type Stream struct {
	// Class is one of the built-in classes: FileStream, WatchedFileStream,
	// TimedRotatingFileStream, StdoutStream, FancyStdoutStream or
	// QueueStream (kept in memory only, for tail). Empty when no stream is
	// configured: the output goes to the arbiter's own, prefixed with the
	// watcher's name and the worker's pid.
	Class string
	// Filename is the file of the file classes; empty means a temporary
	// file, as in Circus.
	Filename string
	// MaxBytes rotates a FileStream before a line would take it past this
	// size; 0 never does.
	MaxBytes int64
	// BackupCount is how many rotated files are kept.
	BackupCount int
	// TimeFormat, a strftime format, prefixes every line with
	// "<time> [<pid>] | " when set.
	TimeFormat string
	// RotateWhen is TimedRotatingFileStream's unit, upper-cased: S, M, H,
	// D, MIDNIGHT or W0..W6 (Monday is 0). RotateInterval counts them.
	RotateWhen     string
	RotateInterval int
	// UTC makes timed rotation, and the names of rotated files, use UTC.
	UTC bool
	// Color is FancyStdoutStream's: red, green, yellow, blue, magenta,
	// cyan or white; empty picks one from the watcher's name.
	Color string
}
