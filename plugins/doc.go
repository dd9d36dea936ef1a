// Package plugins runs Circus's shipped plugins, built into the arbiter:
// the [plugin:NAME] sections of a configuration whose use names one of
// Circus's classes (reference circus-0.19.md §7.3), with Circus's options
// and defaults, read and checked by package config at load time.
//
// Circus runs each plugin as a Python process that subscribes to the
// arbiter's events and sends it commands over the control socket. Here each
// plugin is a goroutine that reads a [pubsub.Bus] subscription and sends
// the same JSON requests to the command table the control endpoint serves
// ([Commands]), and reads the replies from the very bytes a control client
// would receive. A plugin thus sees what Circus's sees and acts as it acts,
// without a process, a socket or Python.
//
// # The plugins
//
//   - Flapping is not here: package config turns it into every watcher's
//     flapping limit, which the arbiter enforces itself.
//   - WatchDog binds ip:port (UDP, 127.0.0.1:1664 by default) and reads
//     heartbeats, "PID;TIMESTAMP" (msg_regex, which must have a pid group).
//     Every loop_rate it lists the workers of the watchers matching
//     watchers_regex, and casts kill (graceful: the watcher's stop_signal,
//     or watchers_stop_signal, then SIGKILL after graceful_timeout or
//     watchers_graceful_timeout) for each worker silent for more than
//     loop_rate × max_count; the arbiter then replaces it. A worker counts
//     from its spawn, or from when the plugin first saw it.
//   - ResourceWatcher asks stats of its watcher every loop_rate; a watcher
//     whose busiest worker is over max_cpu, whose idlest is at or under
//     min_cpu, whose largest is over max_mem or whose smallest is under
//     min_mem (a percent, or a size such as 250M), or whose cpu and memory
//     average over health_threshold, more than max_count samples in a row,
//     is restarted. With process_children, each worker's children are
//     judged on their own and one in breach gets child_signal.
//   - HttpObserver GETs check_url every loop_rate within timeout; a 2xx
//     answer is timed into statsd (http_stats.request_time); anything else
//     (another status, an error: code 599, as Tornado reports it) counts
//     http_stats.error and http_stats.error.CODE and, when restart_on_error
//     names a watcher, restarts it.
//   - CommandReloader, every loop_rate (1 s), finds each watcher's program
//     (executable, else the first word of cmd, looked up in the watcher's
//     PATH as the arbiter does) and restarts the watcher when its real
//     path, modification time or inode changed since the last look.
//   - StatsdEmitter counts every watcher event in statsd:
//     circus.APP.watcher.NAME.EVENT:1|c.
//   - FullStats sends, every loop_rate, gauges of each watcher's workers:
//     _stats.NAME.watchers_num, cpu_max, cpu_sum, mem_pct_max, mem_pct_sum,
//     mem_max, mem_sum (bytes).
//   - RedisObserver sends INFO to redis_url every loop_rate and its usual
//     fields as gauges (redis_stats.KEY); when redis does not answer it
//     counts redis_stats.error and restarts restart_on_timeout, if set.
//
// Every statsd metric is named circus.APP.watcher.METRIC, APP being the
// application_name option, and goes by UDP to host:port (localhost:8125),
// as Circus writes it.
//
// # Differences from Circus
//
// Where Circus's plugin has a bug, the plugin here does what was meant:
//
//   - CommandReloader finds the program of a cmd with arguments, or a bare
//     name found in PATH (Circus stats the whole cmd string and fails), and
//     also notices a program replaced with its modification time kept (a
//     new inode).
//   - WatchDog ignores a datagram that msg_regex does not match (Circus's
//     loop raises), lists the workers at every loop rather than only the
//     first (so a spawn event lost to a full queue loses no worker), and
//     addresses watchers whose name has a space by their name (Circus uses
//     the topic form, web_srv, which no command knows).
//   - ResourceWatcher signals only the child in breach with
//     process_children (Circus's signal, missing childpid, hits every
//     worker), reads an absolute min_mem as bytes (Circus compares it as a
//     percent), and looks at nothing while the watcher has no worker
//     (Circus sees 0 % and, with min_cpu or min_mem, restarts, that is
//     starts, a stopped watcher). max_mem = 0 turns the bound off, as
//     max_cpu = 0 does in Circus.
//   - With sample_rate below 1, counters and timings are sent with that
//     probability, each tagged |@rate as statsd expects; Circus tags every
//     one but sends them all, so statsd scales its counts up by 1/rate.
//     Gauges are always sent.
//   - HttpObserver works (Circus 0.19's uses a Tornado API removed in
//     Tornado 5), and its checks never overlap.
//   - FullStats leaves out of the numbers a worker whose cpu or memory
//     could not be read ("N/A"); Circus's loop raises on it.
//   - An unknown class in use is a load error: Ringmaster runs no Python.
//
// # Lifecycle
//
// [Start] starts the plugins of the configuration in effect, and follows
// reloads: at each ReloadConfig event it reads the configuration again and
// stops the plugins whose section went away or changed, and starts the new
// and changed ones. A plugin that cannot start (its port is in use) is
// logged with its file and line, and tried again at the next reload; the
// arbiter runs on without it. [Manager.Close] stops them all and waits.
//
// # Concurrency
//
// The Manager's goroutine owns the set of running plugins. Each plugin is
// one goroutine that owns all of its state, plus, for WatchDog, a reader of
// its UDP socket that hands heartbeats over a channel. Each plugin that
// follows events has its own bounded subscription: a slow plugin loses its
// own events, as a slow Circus plugin loses them at ZeroMQ's high-water
// mark, and delays nothing else. Commands go through the command table,
// which never blocks its caller for long: a plugin casts commands without
// waiting, as Circus's do, so a restart that takes graceful_timeout does
// not stall the plugin's loop.
package plugins
