package pubsub

import "time"

// Kind is what happened. The String form is Circus's topic suffix
// ("watcher.<name>.<kind>") for Circus's kinds.
type Kind int

// Circus's event kinds, then Ringmaster's own.
const (
	Spawn   Kind = iota + 1 // a worker was started
	Reap                    // a worker was waited for
	Kill                    // a stop signal was sent to a worker
	Start                   // a watcher became active
	Stop                    // a watcher became stopped
	Reload                  // a watcher finished a reload
	Updated                 // a watcher option was set
	Add                     // a watcher was added at runtime
	Remove                  // a watcher was removed at runtime

	Flapping     // a watcher died too often and was stopped (Ringmaster)
	Orphan       // an orphaned descendant was reaped (Ringmaster)
	ReloadConfig // the configuration was re-read and applied (Ringmaster)
	Health       // a worker failed its health check and is being replaced (Ringmaster)
	HookSuccess  // a hook ran and succeeded (Circus's hook_success)
	HookFailure  // a hook failed, timed out or could not run (Circus's hook_failure)
	Limit        // a worker stayed over a resource limit and is being replaced (Ringmaster)
	Ready        // a worker became ready: sd_notify READY=1, a passed check, or warmup (Ringmaster)
	OOM          // the kernel's OOM killer killed a process of a watcher's cgroup (Ringmaster)
	Backoff      // a spawn failed for a passing reason (EAGAIN, EMFILE...) and is retried later (Ringmaster)
	Command      // a command that may change something was run or refused: the audit trail (Ringmaster)
	Scale        // the autoscaler resized a pool (Ringmaster)
	// Upgrade: the arbiter re-executed itself in place, a new binary with
	// every worker kept (Ringmaster), published by the new image.
	Upgrade
	// UpgradeFailed: an upgrade in place did not happen, or the new image
	// gave up and the old one came back (Ringmaster).
	UpgradeFailed
)

var kindNames = [...]string{
	Spawn: "spawn", Reap: "reap", Kill: "kill", Start: "start", Stop: "stop",
	Reload: "reload", Updated: "updated", Add: "add", Remove: "remove",
	Flapping: "flapping", Orphan: "orphan", ReloadConfig: "reloadconfig",
	Health: "health", HookSuccess: "hook_success", HookFailure: "hook_failure",
	Limit: "limit", Ready: "ready", OOM: "oom", Backoff: "backoff", Command: "command",
	Scale: "scale", Upgrade: "upgrade", UpgradeFailed: "upgrade_failed",
}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// Event is one lifecycle fact. Fields that do not apply to a kind are zero.
// An event with no Watcher is about the arbiter itself (Start, Stop,
// ReloadConfig, Orphan).
type Event struct {
	Kind    Kind
	Watcher string    // the watcher's name as configured; "" for the arbiter
	Pid     int       // the worker, for spawn, reap, kill and orphan
	Wid     int       // the worker's slot number, for spawn, reap and kill
	Time    time.Time // when it happened (for spawn: the process start time)
	// ExitCode is the exit status for reap, or the negative signal number
	// when the worker was killed by a signal, as Circus reports it.
	ExitCode int
	// Signal is the signal number sent, for kill.
	Signal int
	// Reason says why, for flapping, health, limit, oom, scale and for
	// stops the arbiter decided on; for hook_failure it is the error.
	Reason string
	// Hook is the hook's name (before_start...), for hook_success and
	// hook_failure.
	Hook string
	// Audit is who sent a command and what came of it, for command.
	Audit *Audit
	// From and To are the pool's size before and after, for scale.
	From, To int
	// Versions are the build versions before and after, for upgrade.
	Versions [2]string
	// Seq numbers the events of one Bus from 1 without gaps, so that a
	// subscriber can tell it missed some; set by the Bus.
	Seq uint64
}

// Audit is one command that may change something, as the command table
// ran it, for the audit trail: who sent it, what it asked, and what came
// of it.
type Audit struct {
	Command string // as sent, such as "incr"
	// Properties is the request's properties object, as JSON.
	Properties []byte
	// Peer names the sender: "uid 1000 pid 4411", "console user admin",
	// "plugin watchdog", "remote 10.0.0.7:4410".
	Peer string
	UID  int    // the sender's uid, -1 when it has none (remote, plugin, console user)
	PID  int    // the sender's pid where the kernel said, else 0
	Via  string // "control", "console", "plugin"
	// Status is "ok", "error" (it ran and failed) or "refused" (the
	// sender was not allowed); Reason the error's text.
	Status string
	Reason string
	// Result is what the command reported doing, as JSON: its reply's
	// fields, such as {"numprocesses": 3} for incr; nil when none.
	Result []byte
}
