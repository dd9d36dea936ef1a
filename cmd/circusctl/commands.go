package main

import (
	"context"
	"strings"
)

// command is one circusctl command: how its command line reads, which
// properties it sends, and how its reply reads for a person.
type command struct {
	name  string
	short string // one line, for the command list
	args  string // the positionals, for the usage line: "NAME [NB]"
	long  string // the help text after the usage line
	flags []flagSpec
	// min and max bound the number of positionals; max < 0 means no bound.
	min, max int
	// rest is, when above zero, how many positionals the command takes
	// before every further argument is a positional too, flag-like or not:
	// add's CMD is a command line of its own.
	rest int
	// comp says what each positional is, for shell completion; the last
	// kind repeats when compRepeat is set.
	comp       []argKind
	compRepeat bool

	// props builds the request's properties. An error is an argument
	// conversion error (exit 1), or a *usageError (exit 2).
	props func(a *parsed) (map[string]any, error)
	// text renders a success reply; nil prints "ok", as Circus does for
	// every command without a console_msg of its own.
	text func(r reply, a *parsed) (string, error)
	// local runs a command that is not a control request (listen, top).
	local func(ctx context.Context, g globals, e environ, a *parsed) error
}

// flagSpec is one of a command's flags. Circus spells them with two
// dashes and underscores (--graceful_timeout); one dash is accepted too.
type flagSpec struct {
	name    string
	short   string // a one-letter form (-f), for Ringmaster's own commands
	value   string // what the value is, for help ("SECONDS"); "" for a switch
	help    string
	choices []string // the only values accepted, if any
	// check validates the value while parsing, so that a bad one is a
	// usage error before anything connects; nil accepts any.
	check func(string) error
}

// argKind is what a positional is, so completion can offer candidates.
type argKind int

const (
	argOther      argKind = iota
	argWatcher            // a watcher name: completion asks the arbiter (list)
	argSignal             // a signal name or number
	argOptKey             // a watcher option (get)
	argSetPair            // set's KEY VALUE pairs: keys at every other position
	argGlobal             // a globaloptions key
	argCommand            // a circusctl command (help)
	argShell              // bash or zsh (completion)
	argExecutable         // add's CMD
)

// Flags several commands share, worded once.
var (
	waitingFlag = flagSpec{name: "waiting", help: "reply when the work is done, with its result, rather than at once"}
	matchFlag   = flagSpec{name: "match", value: "METHOD", choices: []string{"simple", "glob", "regex"},
		help: "how NAME matches watchers: simple (exact), glob (default) or regex"}
)

// stopSignals are offered by completion for signal and kill --signum.
var stopSignals = []string{"TERM", "KILL", "HUP", "INT", "QUIT", "USR1", "USR2", "CONT", "STOP", "TSTP", "TTIN", "TTOU", "WINCH", "ALRM"}

// commands is the command table, in the order help lists it.
var commands = []*command{
	{
		name: "add", short: "Add a watcher", args: "NAME CMD...", min: 2, max: -1, rest: 2,
		flags: []flagSpec{{name: "start", help: "start the watcher at once"}},
		comp:  []argKind{argOther, argExecutable},
		long: `Adds watcher NAME running CMD, stopped unless --start is given.

CMD's words are joined with spaces into one command line, as Circus does.
Every argument from CMD's first word on belongs to CMD, dashes and all, so
that a program's own flags need no quoting: give --start before NAME or
right after it.`,
		props: func(a *parsed) (map[string]any, error) {
			return map[string]any{"name": a.args[0], "cmd": strings.Join(a.args[1:], " "), "start": a.on("start")}, nil
		},
	},
	{
		name: "decr", short: "Decrement the number of processes of a watcher", args: "NAME [NB]", min: 1, max: 2,
		flags: []flagSpec{waitingFlag}, comp: []argKind{argWatcher},
		long: `Stops NB processes (1 by default) of watcher NAME and prints the new number
of processes (with --waiting; "ok" without). A singleton watcher is left
as it is.`,
		props: incrProps, text: incrText,
	},
	{
		name: "dstats", short: "Get the arbiter's own process information", max: 0,
		long: `Prints the arbiter process's pid, command, user, nice, memory, cpu and
cpu time, and those of its children.`,
		props: noProps, text: dstatsText,
	},
	{
		name: "get", short: "Get the value of some options of a watcher", args: "NAME KEY...", min: 2, max: -1,
		comp: []argKind{argWatcher, argOptKey}, compRepeat: true,
		long: `Prints "key: value" for each KEY, one a line, in the order of the reply.
The keys are those "options NAME" lists.`,
		props: func(a *parsed) (map[string]any, error) {
			return map[string]any{"name": a.args[0], "keys": a.args[1:]}, nil
		},
		text: optionsText,
	},
	{
		name: "globaloptions", short: "Get the arbiter's options", args: "[KEY]", max: 1,
		comp: []argKind{argGlobal},
		long: `Prints "key: value" for the arbiter's endpoint, pubsub_endpoint,
stats_endpoint, check_delay and multicast_endpoint, or only for KEY.`,
		props: func(a *parsed) (map[string]any, error) {
			if len(a.args) == 1 {
				return map[string]any{"option": a.args[0]}, nil
			}
			return map[string]any{}, nil
		},
		text: optionsText,
	},
	{
		name: "incr", short: "Increment the number of processes of a watcher", args: "NAME [NB]", min: 1, max: 2,
		flags: []flagSpec{waitingFlag}, comp: []argKind{argWatcher},
		long: `Starts NB more processes (1 by default) of watcher NAME and prints the new
number of processes (with --waiting; "ok" without). A singleton watcher is
left as it is.`,
		props: incrProps, text: incrText,
	},
	{
		name: "ipython", short: "Start an IPython kernel inside the arbiter", max: 0,
		long: `Asks the arbiter for an IPython kernel inside its own process. Circus's
circusd can do it when IPython is installed; Ringmaster answers with an
error.`,
		props: noProps, text: ipythonText,
	},
	{
		name: "kill", short: "Stop processes of a watcher gracefully", args: "NAME [PID]", min: 1, max: 2,
		flags: []flagSpec{
			waitingFlag,
			{name: "signum", value: "SIGNAL", help: "the signal to send first, by name (TERM, SIGTERM) or number; the watcher's stop_signal by default"},
			{name: "graceful_timeout", value: "SECONDS", help: "how long to wait before SIGKILL; the watcher's graceful_timeout by default"},
		},
		comp: []argKind{argWatcher},
		long: `Sends the stop signal to process PID of watcher NAME, or to all of them,
then SIGKILL to those still there after the graceful timeout. The watcher
respawns them as usual. An unknown PID is not an error.

Unlike Circus's circusctl, this one sends PID as a number,
--graceful_timeout as a number (Circus sends a string, which breaks the
arbiter's wait) and --waiting (which Circus drops).`,
		props: killProps,
	},
	{
		name: "list", short: "Get the list of watchers, or of a watcher's processes", args: "[NAME]", max: 1,
		comp: []argKind{argWatcher},
		long: `Prints the watchers' names, or the pids of watcher NAME's processes,
separated by commas.`,
		props: nameProps, text: listText,
	},
	{
		name: "listen", short: "Subscribe to the arbiter's events", args: "[TOPIC...]", max: -1,
		long: `Prints every event whose topic starts with one of TOPICs (all when none)
as "topic: json", until interrupted. It reads the events endpoint:
--endpoint, else tcp://127.0.0.1:5556 ($CIRCUSCTL_ENDPOINT is the control
endpoint, so it is not used).`,
		local: func(ctx context.Context, g globals, e environ, a *parsed) error {
			return listen(ctx, endpointOr(g.endpoint, defaultSub), a.args, e.stdout)
		},
	},
	{
		name: "listsockets", short: "Get the list of sockets", max: 0,
		long:  `Prints the arbiter's sockets: fd, name, address and backlog.`,
		props: noProps, text: socketsText,
	},
	{
		name: "numprocesses", short: "Get the number of processes", args: "[NAME]", max: 1,
		comp:  []argKind{argWatcher},
		long:  `Prints how many processes run, in all or in watcher NAME.`,
		props: nameProps, text: numberText("numprocesses"),
	},
	{
		name: "numwatchers", short: "Get the number of watchers", max: 0,
		long:  `Prints how many watchers the arbiter has.`,
		props: noProps, text: numberText("numwatchers"),
	},
	{
		name: "options", short: "Get the value of all options of a watcher", args: "NAME", min: 1, max: 1,
		comp: []argKind{argWatcher},
		long: `Prints "key: value" for every option of watcher NAME. Booleans read True
and False and env reads K=V,K2=V2, as with Circus.`,
		props: nameProps, text: optionsText,
	},
	{
		name: "quit", short: "Stop every watcher and the arbiter", max: 0,
		flags: []flagSpec{waitingFlag},
		long: `Stops every watcher, then the arbiter itself. In the interactive shell
too: leave the shell with Ctrl-D or exit.`,
		props: waitingProps,
	},
	{
		name: "reload", short: "Reload the arbiter or a watcher", args: "[NAME]", max: 1,
		flags: []flagSpec{
			{name: "terminate", help: "stop the old processes at once rather than gracefully"},
			waitingFlag,
			{name: "sequential", help: "replace the processes one at a time"},
		},
		comp: []argKind{argWatcher},
		long: `Replaces the processes of watcher NAME, or of every watcher, with new ones,
gracefully unless --terminate: new processes first, then the old ones
stop.`,
		props: func(a *parsed) (map[string]any, error) {
			p := map[string]any{"graceful": !a.on("terminate"), "waiting": a.on("waiting"), "sequential": a.on("sequential")}
			if len(a.args) == 1 {
				p["name"] = a.args[0]
			}
			return p, nil
		},
	},
	{
		name: "reloadconfig", short: "Reload the configuration file", max: 0,
		flags: []flagSpec{waitingFlag},
		long: `Reads the arbiter's configuration file again and applies the difference:
new watchers are added, removed ones stopped, changed ones reloaded.`,
		props: waitingProps,
	},
	{
		name: "restart", short: "Restart the arbiter or watchers", args: "[NAME]", max: 1,
		flags: []flagSpec{waitingFlag, matchFlag}, comp: []argKind{argWatcher},
		long:  `Restarts the watchers NAME matches, or, without NAME, the whole arbiter.`,
		props: matchProps,
	},
	{
		name: "rm", short: "Remove a watcher", args: "NAME", min: 1, max: 1,
		flags: []flagSpec{waitingFlag, {name: "nostop", help: "leave the watcher's processes running"}},
		comp:  []argKind{argWatcher},
		long: `Removes watcher NAME, stopping its processes unless --nostop.

Unlike Circus's circusctl, which drops both flags, this one sends --waiting
and --nostop.`,
		props: func(a *parsed) (map[string]any, error) {
			return map[string]any{"name": a.args[0], "waiting": a.on("waiting"), "nostop": a.on("nostop")}, nil
		},
	},
	{
		name: "set", short: "Set options of a watcher", args: "NAME KEY VALUE [KEY VALUE...]", min: 3, max: -1,
		flags: []flagSpec{waitingFlag}, comp: []argKind{argWatcher, argSetPair}, compRepeat: true,
		long: `Sets watcher options; the watcher resizes, reloads or takes the new value
as the option requires. Values are converted as Circus's circusctl does:
numprocesses, max_retry, max_age, max_age_variance, rlimit_* and the
streams' max_bytes and backup_count are integers; warmup_delay,
graceful_timeout and retry_in numbers; send_hup, shell, copy_env, respawn,
stop_children, singleton and close_child_* booleans (true, yes, on, 1,
false, no, off, 0); stop_signal a signal name or number; env K=V,K2=V2;
hooks NAME:MODULE.FUNC,...; anything else a string.`,
		props: setProps,
	},
	{
		name: "signal", short: "Send a signal", args: "NAME [PID] SIGNUM", min: 2, max: 3,
		flags: []flagSpec{
			{name: "children", help: "signal the children of the process only"},
			{name: "recursive", help: "signal the process and all its descendants"},
		},
		comp: []argKind{argWatcher, argSignal}, compRepeat: true,
		long: `Sends SIGNUM (a name such as HUP or SIGHUP, or a number) to process PID of
watcher NAME, or to all of its processes.`,
		props: signalProps,
	},
	{
		name: "start", short: "Start the arbiter or watchers", args: "[NAME]", max: 1,
		flags: []flagSpec{waitingFlag, matchFlag}, comp: []argKind{argWatcher},
		long: `Starts the watchers NAME matches, or, without NAME, every watcher that
starts automatically.`,
		props: matchProps,
	},
	{
		name: "stats", short: "Get process information", args: "[NAME [PID]]", max: 2,
		flags: []flagSpec{{name: "extended", help: "include what the extended_stats hook adds (--json shows it)"}},
		comp:  []argKind{argWatcher},
		long: `Prints a table of the processes of every watcher, of watcher NAME, or
process PID of it: pid, command, user, nice, resident and virtual memory,
cpu %, memory %, cpu time and age, with each process's children below it.`,
		props: func(a *parsed) (map[string]any, error) {
			p := map[string]any{"extended": a.on("extended")}
			if len(a.args) > 0 {
				p["name"] = a.args[0]
			}
			if len(a.args) > 1 {
				pid, err := atoi("PID", a.args[1])
				if err != nil {
					return nil, err
				}
				p["process"] = pid
			}
			return p, nil
		},
		text: statsText,
	},
	{
		name: "status", short: "Get the status of a watcher or all watchers", args: "[NAME]", max: 1,
		comp:  []argKind{argWatcher},
		flags: []flagSpec{{name: "table", help: "print the table even when the output is not a terminal"}},
		long: `On a terminal (or with --table), a table of the watchers: NAME, STATE and
what it waits for ("stopped (flapping, retry 1 of 5 in 6.2s)"), workers
READY/RUNNING/TARGET, UPTIME, the RESTARTS counted (deaths not asked for,
and replacements for health, limits or max_age) and the LAST EXIT ("SIGKILL
(not expected) 12s ago, pid 4242"); with NAME, then its workers.

Piped, Circus's lines, which scripts read: the state of NAME, or "name:
state" for every watcher, sorted by name, each with its detail in
parentheses when there is one. --json prints the whole reply. Circus's own
arbiter sends no details: then the lines are printed in any case.`,
		props: func(a *parsed) (map[string]any, error) {
			p, err := nameProps(a)
			p["details"] = true
			return p, err
		},
		text: statusText,
	},
	{
		name: "stop", short: "Stop the arbiter's watchers", args: "[NAME]", max: 1,
		flags: []flagSpec{waitingFlag, matchFlag}, comp: []argKind{argWatcher},
		long: `Stops the watchers NAME matches, or every watcher. The arbiter keeps
running (quit stops it).`,
		props: matchProps,
	},
	{
		name: "tail", short: "Show the recent output of a watcher's processes", args: "NAME", min: 1, max: 1,
		flags: []flagSpec{
			{name: "lines", short: "n", value: "N", help: "show the last N lines (default 10; 0: all kept)", check: countFlag},
			{name: "follow", short: "f", help: "keep printing new lines until interrupted"},
			{name: "pid", value: "PID", help: "only this process's lines", check: countFlag},
			{name: "stream", value: "STREAM", choices: []string{"stdout", "stderr"}, help: "only stdout's or stderr's lines"},
		},
		comp: []argKind{argWatcher},
		long: `Prints the recent output of watcher NAME's processes, oldest first, as
"[PID] line", stderr's lines on stderr. The arbiter keeps the last 64 KiB
of each process, and of the last 8 that exited, whatever the watcher's
stream, so this works without a log file. With --follow (-f) it prints new
lines as they come. Ringmaster's own: Circus has no tail.`,
		local: func(ctx context.Context, g globals, e environ, a *parsed) error {
			return tail(ctx, g, e, a)
		},
	},
	{
		name: "upgrade", short: "Upgrade the arbiter in place, keeping every process", max: 0,
		flags: []flagSpec{
			{name: "binary", value: "PATH", help: "the new binary (default: the arbiter's own path)"},
			{name: "reloadconfig", help: "then reload the configuration file in the new image"},
		},
		long: upgradeHelp,
		local: func(ctx context.Context, g globals, e environ, a *parsed) error {
			return upgrade(ctx, g, e, a)
		},
	},
	{
		name: "logs", short: "Show every watcher's output and the arbiter's log, by time", args: "[WATCHER...]", max: -1,
		flags: []flagSpec{
			{name: "follow", short: "f", help: "keep printing new lines until interrupted"},
			{name: "since", value: "DURATION", help: "only lines of the last DURATION (90s, 10m, 2h)", check: durationFlag},
			{name: "lines", short: "n", value: "N", help: "show the last N lines (default 10, or all with --since; 0: all kept)", check: countFlag},
			{name: "arbiter", help: "with WATCHERs, show the arbiter's own log lines too"},
		},
		comp: []argKind{argWatcher}, compRepeat: true,
		long: logsHelp,
		local: func(ctx context.Context, g globals, e environ, a *parsed) error {
			return logs(ctx, g, e, a)
		},
	},
	{
		name: "top", short: "Show live cpu, memory and age of every process", max: 0,
		flags: []flagSpec{{name: "process-timeout", value: "DURATION", help: "drop a process not reported for this long (default 3s)", check: durationFlag}},
		long: `Repaints, every second, the processes of each watcher with their cpu,
memory and age, from the stats stream (statsd = true in the arbiter's
[circus] section). It reads the stats endpoint: --endpoint, else
tcp://127.0.0.1:5557.`,
		local: func(ctx context.Context, g globals, e environ, a *parsed) error {
			var args []string
			if v, ok := a.set["process-timeout"]; ok {
				args = []string{"-process-timeout", v}
			}
			return top(ctx, g, args, e.stdout, e.stderr)
		},
	},
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}
