// Command circusctl drives a Ringmaster (or Circus) arbiter from the
// command line, with Circus's circusctl syntax: global options first, then
// the command and its arguments.
//
//	circusctl [--endpoint E] [--timeout S] [--json [--prettify]] COMMAND [ARGS]
//
// The control commands send one request to the control endpoint:
// --endpoint, else $CIRCUSCTL_ENDPOINT, else tcp://127.0.0.1:5555.
//
//	add [--start] NAME CMD...        add a watcher
//	decr NAME [NB] [--waiting]       stop NB (1) processes of a watcher
//	dstats                           the arbiter's own process information
//	get NAME KEY...                  some options of a watcher
//	globaloptions [KEY]              the arbiter's options
//	incr NAME [NB] [--waiting]       start NB (1) more processes of a watcher
//	ipython                          ask for an IPython kernel (Circus only)
//	kill NAME [PID] [--signum S] [--graceful_timeout T] [--waiting]
//	                                 stop processes gracefully
//	list [NAME]                      watchers, or the pids of one
//	listsockets                      the arbiter's sockets
//	numprocesses [NAME]              how many processes run
//	numwatchers                      how many watchers there are
//	options NAME                     every option of a watcher
//	quit [--waiting]                 stop everything and the arbiter
//	reload [NAME] [--terminate] [--waiting] [--sequential]
//	                                 replace processes with new ones
//	reloadconfig [--waiting]         apply the configuration file again
//	restart [NAME] [--waiting] [--match M]
//	                                 restart watchers, or the arbiter
//	rm NAME [--waiting] [--nostop]   remove a watcher
//	set NAME KEY VALUE... [--waiting]
//	                                 set options of a watcher
//	signal NAME [PID] SIGNUM [--children] [--recursive]
//	                                 send a signal
//	start [NAME] [--waiting] [--match M]
//	                                 start watchers
//	stats [--extended] [NAME [PID]]  process information
//	status [NAME] [--table]          watcher states; a table on a terminal
//	stop [NAME] [--waiting] [--match M]
//	                                 stop watchers
//
// Two read the arbiter's publishers instead:
//
//	listen [TOPIC...]   print every event as "topic: json" (a SUB on the
//	                    events endpoint, --endpoint or tcp://127.0.0.1:5556)
//	top                 live cpu, memory and age of every worker (a SUB on
//	                    the stats endpoint, --endpoint or tcp://127.0.0.1:5557)
//
// And two are circusctl's own: help [COMMAND] (as is COMMAND --help), and
// completion bash|zsh, which prints a completion script.
//
// With no command, circusctl is Circus's interactive shell: it prints the
// status of every watcher, then runs each line of its input as a command
// after the prompt "(circusctl) ". End of input (Ctrl-D) or exit leaves;
// quit, as in Circus, stops the arbiter.
//
// # Output and exit status
//
// Replies print as Circus's circusctl prints them where scripts read them
// ("ok", a number, comma-separated names, "name: state" lines, "key:
// value" lines), and as aligned tables for stats, dstats and listsockets;
// status on a terminal (or with --table) is a table of the watchers, their
// workers, uptime, restarts and last exit.
// --json prints the reply itself, --prettify indented with sorted keys.
//
// The exit status is Circus's: 0 success; 3 for an error reply, whose
// reason goes to stderr as "error: reason"; 1 for a timeout, a connection
// failure or an argument that does not convert (NB not a number); 2 for a
// command line that does not parse (an unknown command or flag, or a wrong
// number of arguments, which Circus's circusctl reports as 1). With --json
// an error reply still exits 0, as with Circus, whose scripts read the
// reply's status instead.
//
// Where Circus's circusctl drops or mistypes properties, this one sends
// what the arbiter expects: rm's --waiting and --nostop; kill's pid and
// --graceful_timeout as numbers, and its --waiting.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

const (
	defaultControl = "tcp://127.0.0.1:5555"
	defaultSub     = "tcp://127.0.0.1:5556"
	defaultStats   = "tcp://127.0.0.1:5557"
)

// Exit statuses, Circus's.
const (
	exitOK      = 0
	exitFailure = 1 // timeout, connection failure, argument conversion
	exitUsage   = 2
	exitError   = 3 // an error reply
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], environ{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, terminal: isTerminal(os.Stdout)})
	stop()
	os.Exit(code)
}

// environ is what run takes from the process, so that tests can run it
// in parallel with their own.
type environ struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	terminal       bool // stdout is a terminal
}

// globals are Circus's global options, which come before the command.
type globals struct {
	endpoint string // --endpoint as given; "" when not
	timeout  time.Duration
	json     bool
	prettify bool
}

// controlEndpoint is where control commands go: --endpoint, else
// $CIRCUSCTL_ENDPOINT, else Circus's default. listen and top have their
// own defaults, as the variable names a control endpoint.
func (g globals) controlEndpoint(e environ) string {
	if g.endpoint != "" {
		return g.endpoint
	}
	if v := e.getenv("CIRCUSCTL_ENDPOINT"); v != "" {
		return v
	}
	return defaultControl
}

// run is circusctl: it parses args, runs the command (or the shell) and
// returns the exit status.
func run(ctx context.Context, args []string, e environ) int {
	fs := flag.NewFlagSet("circusctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	var g globals
	fs.StringVar(&g.endpoint, "endpoint", "", "")
	timeout := fs.Float64("timeout", 5, "")
	fs.BoolVar(&g.json, "json", false, "")
	fs.BoolVar(&g.prettify, "prettify", false, "")
	ssh := fs.String("ssh", "", "")
	sshKeyfile := fs.String("ssh_keyfile", "", "")
	version := fs.Bool("version", false, "")
	// Defined rather than left to flag's ErrHelp, so that "--help COMMAND"
	// still sees the command and prints its help, as Circus's does.
	var help bool
	fs.BoolVar(&help, "help", false, "")
	fs.BoolVar(&help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(e.stderr, "circusctl: %v\n%s\n", err, usageLine)
		return exitUsage
	}
	switch {
	case help:
		return helpCommand(e, fs.Args()[:min(fs.NArg(), 1)])
	case *version:
		fmt.Fprintf(e.stdout, "circusctl (Ringmaster) %s\n", buildVersion())
		return exitOK
	case *ssh != "" || *sshKeyfile != "":
		fmt.Fprintf(e.stderr, "circusctl: --ssh is not supported: forward the endpoint yourself, as in ssh -N -L 5555:127.0.0.1:5555 user@host\n")
		return exitUsage
	case !(*timeout > 0):
		fmt.Fprintf(e.stderr, "circusctl: --timeout %v: want a number of seconds above 0\n", *timeout)
		return exitUsage
	}
	g.timeout = time.Duration(*timeout * float64(time.Second))
	if fs.NArg() == 0 {
		return shell(ctx, g, e)
	}
	return g.exec(ctx, e, fs.Args())
}

// exec runs one command line, argv[0] being the command, and returns its
// exit status. The shell runs each of its lines through it too.
func (g globals) exec(ctx context.Context, e environ, argv []string) int {
	switch argv[0] {
	case "help":
		return helpCommand(e, argv[1:])
	case "completion":
		return completionCommand(e, argv[1:])
	}
	c := lookup(argv[0])
	if c == nil {
		fmt.Fprintf(e.stderr, "circusctl: unknown command %q (circusctl help lists them)\n", argv[0])
		return exitUsage
	}
	a, err := c.parse(argv[1:])
	if errors.Is(err, errHelp) {
		printCommandHelp(e.stdout, c)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "circusctl %s: %v\nusage: %s\n", c.name, err, c.usage())
		return exitUsage
	}
	a.terminal = e.terminal
	if c.local != nil {
		err := c.local(ctx, g, e, a)
		var ce *control.CallError
		switch {
		case err == nil, errors.Is(err, context.Canceled):
		case errors.As(err, &ce):
			fmt.Fprintf(e.stderr, "error: %s\n", ce.Reason)
			return exitError
		default:
			fmt.Fprintf(e.stderr, "circusctl %s: %v\n", c.name, err)
			return exitFailure
		}
		return exitOK
	}
	props, err := c.props(a)
	if ue := (*usageError)(nil); errors.As(err, &ue) {
		fmt.Fprintf(e.stderr, "circusctl %s: %v\nusage: %s\n", c.name, err, c.usage())
		return exitUsage
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "circusctl %s: %v\n", c.name, err)
		return exitFailure
	}
	return g.call(ctx, e, c, a, props)
}

// timeoutHint follows a timeout, as Circus's circusctl explains one.
const timeoutHint = `A timeout means that the arbiter could not be reached (check --endpoint
and $CIRCUSCTL_ENDPOINT), or that it took longer than --timeout to answer:
a --waiting command may need a larger --timeout.
`

// call sends one control request and prints its reply.
func (g globals) call(ctx context.Context, e environ, c *command, a *parsed, props map[string]any) int {
	endpoint := g.controlEndpoint(e)
	timedOut := func() int {
		fmt.Fprintf(e.stderr, "circusctl %s: timed out after %v (endpoint %s)\n%s", c.name, g.timeout, endpoint, timeoutHint)
		return exitFailure
	}
	cl, err := control.Dial(endpoint, g.timeout)
	if isTimeout(err) {
		return timedOut()
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "circusctl %s: %v\n", c.name, err)
		return exitFailure
	}
	defer cl.Close()
	cctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	raw, err := cl.Call(cctx, c.name, props)
	var ce *control.CallError
	switch {
	case err == nil, errors.As(err, &ce):
	case ctx.Err() != nil:
		return exitFailure // interrupted, which needs no message
	case isTimeout(err):
		return timedOut()
	default:
		fmt.Fprintf(e.stderr, "circusctl %s: %v (endpoint %s)\n", c.name, err, endpoint)
		return exitFailure
	}
	if g.json {
		out, err := renderJSON(raw, g.prettify)
		if err != nil {
			fmt.Fprintf(e.stderr, "circusctl %s: %v\n", c.name, err)
			return exitFailure
		}
		fmt.Fprintln(e.stdout, out)
		return exitOK
	}
	if ce != nil {
		fmt.Fprintf(e.stderr, "error: %s\n", ce.Reason)
		return exitError
	}
	r, err := decodeReply(raw)
	if err != nil {
		fmt.Fprintf(e.stderr, "circusctl %s: %v\n", c.name, err)
		return exitFailure
	}
	out := "ok"
	if c.text != nil {
		out, err = c.text(r, a)
	}
	if f := (*failure)(nil); errors.As(err, &f) {
		fmt.Fprintf(e.stderr, "error: %s\n", f.reason)
		return exitError
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "circusctl %s: unexpected reply: %v\n%s\n", c.name, err, raw)
		return exitFailure
	}
	fmt.Fprintln(e.stdout, out)
	return exitOK
}

// isTimeout reports whether err is a deadline passing, whichever layer's:
// the call's context, the dial, or the handshake's read deadline.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}

func endpointOr(e, def string) string {
	if e != "" {
		return e
	}
	return def
}
