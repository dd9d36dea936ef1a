// Package arbiter supervises pools of worker processes ("watchers") the way
// Circus does: it binds the configured sockets once, starts every watcher's
// workers with those sockets inherited, replaces a worker the moment it dies,
// and stops them gracefully.
//
// # Lifecycle
//
// [New] binds every socket (so a port in use fails before any worker
// exists). [Arbiter.Run] starts the autostart watchers one after another,
// highest priority first, [circus] warmup_delay apart; each spawns its
// numprocesses workers warmup_delay apart and becomes active. A worker that
// dies is reaped at once (SIGCHLD, never polling) and replaced at once; the
// n-th quick death in a row of one slot waits restart_delay × 2^(n-2) (a
// crash loop is paced, not respawned within milliseconds). Too many
// unexpected deaths within a window (the flapping limit: flapping.* keys or
// Circus's Flapping plugin section) stop the watcher, which is tried again
// after retry_in, up to max_retry times. Deaths the arbiter caused (stop,
// max_age recycling) never count. Failed spawns (a missing program) are
// retried with a growing pause and stop the watcher after max_retry; a spawn
// that fails for a passing reason (EAGAIN, EMFILE, ENFILE, ENOMEM, a cgroup
// join) is retried with a capped, jittered backoff for as long as the fault
// lasts, and never counts. Every worker death the arbiter did not ask
// for, and every replacement it made on its own account (health, limits,
// max_age), is counted by reason in the watcher's [Status], with the last
// one, for operators and metrics (restarts.go).
//
// Each watcher is one state machine, its transitions in lifecycle.go:
// Circus's stopped, starting, active and stopping, refined by what it
// waits for, which [Status] reports as Detail (a hook, a backoff, a crash
// loop's pause, a flapping retry). Nothing in it waits: a start until
// ready, a stop until reaped, a hook, a spawn and a reload are states
// with deadlines, left when an exit, a hook's result, a spawn's end or a
// timer arrives, so the watcher always takes the next request. A stop
// overtakes a start or a reload (queued or running) and answers it; the
// arbiter's shutdown overtakes everything, the arbiter-wide operations
// (restart, reloadconfig, add, rm) included, which run on a goroutine of
// their own and are cancelled by it. A start answers when the watcher is
// active, or at its first failed attempt while it retries on (as systemctl
// start answers with its job), and restart and reloadconfig answer their
// watchers' start failures.
//
// Stopping a worker sends stop_signal to its process group (so its
// descendants get it too), and SIGKILL to the group after graceful_timeout.
// When a worker dies, whatever is left in its group is killed, before the
// worker is reaped: no grandchild outlives its worker. The arbiter is a child subreaper, so
// orphans of double-forking programs are reaped, never left as zombies.
//
// A running watcher can be resized ([Watcher.Incr]), reloaded gracefully
// ([Watcher.Reload]: every replacement started before the old workers are
// signalled, or with sequential one at a time, warmup_delay apart), sent a
// signal ([Watcher.Signal]) or have workers stopped and replaced
// ([Watcher.Kill]). [Arbiter.Reload] applies a new configuration: unchanged
// watchers are not touched, one whose numprocesses alone changed is
// resized in place, changed ones are reloaded gracefully (on their new
// sockets if those moved), new ones start and removed ones stop.
//
// A watcher with autoscale.max is autoscaled from its sockets' accept
// queues, which the arbiter sees because it holds the listening sockets:
// one sampler goroutine reads them about ten times a second (TCP_INFO on
// TCP listeners, one sock_diag dump for the unix ones) and hands each
// watcher's loop the connections waiting; the loop's scaler grows the
// pool in proportion to a queue that stays for autoscale.up_after beyond
// the workers already starting, and once the queue has stayed empty for
// autoscale.idle shrinks it gracefully, one worker each
// autoscale.down_interval, within [autoscale.min, autoscale.max], never
// while a reload runs (scaler.go, autoscale.go, queues.go). With min 0 an
// empty pool's sockets stay bound and listening; the sampler waits on them
// in epoll and a first connection, held in the backlog, starts a worker
// at once. incr, decr and set move the size within the bounds;
// reloadconfig and set apply new autoscale keys without a reload.
//
// A watcher with critical = true that gives up for good (the flapping
// limit's max_retry, or max_retry failed spawns in a row) ends the
// arbiter: Run shuts down as below and returns a [CriticalError] naming it
// (critical.go), so that the engine above (Docker, Kubernetes, systemd)
// sees the service fail and restarts or replaces it.
//
// When Run's context is done, the one shutdown sequence runs: watchers stop
// in reverse priority (those of equal priority together), each as above;
// the watcher loops end; the cgroups are emptied and removed; the guardian
// stands down; the sockets close and unix socket files are removed.
// Nothing Run started is running when it returns.
//
// An arbiter that dies without shutting down (SIGKILL, the OOM killer, a
// crash) takes with it everything it started. Run starts a guardian first,
// before any worker: a small process forked from C (guardian.c), in a
// session of its own and ignoring signals, that reads a pipe whose write
// end only the arbiter holds. Each child the arbiter spawns (worker, hook,
// health.cmd) writes its own pid there before anything else, before its
// exec, and the reaper writes a removal for each child it reaps, while the
// child is a zombie and its pid cannot be reused (guardlink.go). When the
// arbiter dies that pipe reaches end of file, and the guardian sends
// SIGKILL to the process group of each child it knows and to the child,
// then, where the arbiter has a cgroup tree, kills the whole tree
// (cgroup.kill, or freezer and SIGKILL), so that the daemons workers
// detach die too, and removes it. A clean shutdown writes a stand-down
// first; the guardian exits and is reaped as the arbiter's own, never
// reported as an orphan. One killed by hand is replaced, a second later,
// by one that knows every live child. Without a tree, or for watchers with
// cgroup = off, the log says once at start-up that what workers detach
// from their process group can outlive a killed arbiter.
//
// The parent-death signal is not used while a guardian runs: Linux ties it
// to the thread that forked the child, and an exec of the arbiter (an
// upgrade in place: same pid, new binary) ends every thread but the
// caller's, which would fire it for the workers of every other thread. An
// exec keeps the guardian: nothing ties it to a thread, and the arbiter
// clears close-on-exec on the write end, whose number and the guardian's
// pid the new image, still the guardian's parent, adopts
// (guardian_handover.go). Only a child spawned while no guardian runs
// (none could be started, and the log says why; or the last one died and
// its replacement waits for its pause) gets the parent-death signal
// (SIGKILL) instead; while such a child lives the arbiter is not guarded,
// and an upgrade in place is refused.
//
// # Process state
//
// A worker starts in its own process group with its watcher's environment
// (copy_env, [env] sections), working_dir, uid, gid and supplementary
// groups, and fds 3.. holding its sockets (announced three ways:
// $(circus.sockets.NAME) in cmd and args, LISTEN_FDS/LISTEN_FDNAMES/
// LISTEN_PID, and the fd order; LISTEN_* only where cmd and args name no
// socket, or listen_fds says so, since a program that adopts both takes
// the same fd twice: see config.Watcher.SystemdDialect). Workers are not
// started with os/exec, which cannot set state between fork and exec:
// spawn.c forks them with a vfork-style clone (as glibc's posix_spawn
// does; clone3, into the worker's v2 cgroup, where it has one) and, in the
// child, with raw system calls only, joins its v1 cgroups if any, applies
// the umask, rlimits, niceness, chroot, credentials, working directory and
// LISTEN_PID = the worker's own pid, closes every fd beyond those handed
// over, and execs the worker: one exec per worker, whatever it needs. The
// package therefore needs cgo.
//
// Where the host offers writable cgroups (found at start-up by package
// cgroups, never assumed), each watcher's workers are in a cgroup of their
// own (with cgroup = worker, each worker in one inside it) from their first
// instruction, with its cgroup.* limits set: nothing a worker forks is
// outside it, so a stopped watcher's cgroup is killed whole, daemons
// included, and an OOM kill in it is published. Entering a cgroup must
// cost a spawn nothing when no limit needs it: the worker is created in
// its v2 cgroup by clone3's CLONE_INTO_CGROUP, and it joins a v1 hierarchy
// (a write to cgroup.procs in the child, a migration that costs
// milliseconds after a quiet moment) only where one carries a limit the
// watcher sets, or on a host without v2. Where clone3 cannot do it (a
// kernel before 5.7, a seccomp filter, an architecture other than x86_64
// and aarch64), the child writes to the v2 cgroup.procs too. See
// [Arbiter.Cgroups]. Without cgroups, everything works as it does with
// cgroup = off.
//
// # Output
//
// A worker's stdout and stderr are pipes whose other ends the watcher's
// [logs.Output] reads, one goroutine per pipe, into the destinations the
// stdout_stream and stderr_stream options name (or the arbiter's own
// output, prefixed); close_child_stdout and close_child_stderr give /dev/null
// instead. Destinations are opened when the watcher is created, so a log
// file that cannot be opened fails New, Add or Reload with its file:line;
// Set and Reload switch them without a new worker. A removed watcher's
// output is read until its pipes close, for at most a moment after its
// workers are gone.
//
// # Concurrency
//
// One goroutine owns each piece of mutable state. Each [Watcher] has a loop
// goroutine owning its workers, counters and its single timer; its methods
// send it requests, typed values carrying their own reply channel
// (requests.go, whose handle switch is the one place that says what each
// does), so a slow stop of one watcher never delays a command on another,
// and commands on one watcher run in order. A spawn runs on a goroutine of
// its own and its end comes back to the loop as a message, as do hook
// results: the loop never blocks. The operations goroutine owns the set of
// watchers and sockets and publishes immutable snapshots of it; Run's own
// goroutine only waits for the shutdown. Exactly one goroutine per process,
// the reaper, waits for children: on SIGCHLD it looks at each exited child
// without reaping it (waitid with WNOWAIT), kills what is left of an owned
// child's process group while the child is a zombie and its pid cannot be
// reused, reaps it and routes its exit to the owner (a watcher loop, or a
// hook or health.cmd run). Forks happen on a pool of four spawner threads
// that live as long as the reaper: a child that cannot register with a
// guardian (none runs) gets the parent-death signal, which is tied to the
// forking thread. Each child registers itself with the guardian, so no
// spawner waits on the guardian's pipe, and the reaper's removals never
// block (a pipe the guardian has stopped reading loses them: see
// guardlink.go). No lock is held across a fork, which lasts until the child execs:
// a child blocked before exec (a hung working_dir, a slow cgroup) holds up
// one spawner thread and that spawn alone, never the reaper, its watcher's
// loop nor the other watchers; four such children at once make further
// spawns wait. A stop kills such a child (through the pidfd the kernel
// gave its spawner) once it has been stuck for graceful_timeout. A child
// that dies before its spawner has registered it is recognized by its
// pidfd, and its exit reaches its owner all the same. Workers are signalled
// through pidfds; their process groups only under the reaper's lock, and
// only while the leader is unreaped, so a recycled pid is never hit.
// Nothing calls exec.Cmd.Wait; a program embedding this package must not
// wait for children itself while an Arbiter runs.
//
// # Events
//
// Every state change emits exactly one [pubsub.Event] through the
// [Publisher], from the loop that made it: spawn, reap (exit code, or the
// negative signal number), kill (each signal sent by the stop machinery),
// start, stop, reload; and Ringmaster's own flapping and scale (each
// resize the autoscaler decides, with its from, to and reason), and for
// the arbiter itself start, stop, reloadconfig and orphan. The same facts go to the
// log.
//
// # Upgrading in place
//
// [Arbiter.Upgrade] hands the arbiter over to a new image of itself: the
// program execs its new binary, same pid, and the workers, still its
// children, carry on. It runs as an arbiter-wide operation: the reaper is
// held (no exit is reaped, so none is lost: the dead stay zombies), then
// every watcher's loop, in turn, either names what it has under way that
// only its goroutines know (a spawn, a hook, a reload, a stop: the attempt
// is then given up, everything thawed, and tried again a moment later, for
// ten seconds at most) or writes its state down ([Handover]: its options
// as the file and as commands made them, its size, its workers with their
// slots, ages and readiness, its restart counts, crash-loop pauses and
// flapping history) and waits, frozen, for the exec. The caller's exec
// function gets the state with every fd it names kept across the exec; if
// it returns, the exec failed, and everything goes on as before. The new
// image calls [Restore] with that state instead of [New], and Run adopts
// every worker (a pidfd each, opened while the reaper is held) before it
// reaps anything: exits during the hand-over then reach their watchers as
// any other. It starts nothing the old image had not started: each
// watcher resumes where it was (its health checks, notify readers and
// timers start again).
package arbiter
