package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

const usageLine = "usage: arbiter [flags] CONFIG"

// docsURL is where the operator's documentation lives (docs/ in the
// source tree).
const docsURL = "https://github.com/ringmaster-dev/ringmaster/tree/main/docs"

// printUsage is the short reminder for a command line that does not parse.
func printUsage(w io.Writer) {
	fmt.Fprintf(w, "%s\nRun 'arbiter --help' for the flags, signals and exit codes.\n", usageLine)
}

// printHelp is --help: what the arbiter does, its flags, the signals it
// answers, its exit codes and where the documentation is.
func printHelp(w io.Writer, fs *flag.FlagSet) {
	var b strings.Builder
	fmt.Fprintf(&b, `%s

Runs the watchers of a Circus configuration file (CONFIG) in the foreground:
binds its sockets, starts its workers, keeps them alive, and serves the
control, events and stats endpoints and the web console it configures.

Flags (a value comes from the flag, else from CONFIG's [circus] section,
else from the default):
`, usageLine)
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		switch name {
		case "":
		case "string":
			name = " VALUE"
		default:
			name = " " + name
		}
		flagRow(&b, f.Name+name, usage)
	})
	flagRow(&b, "help", "print this help and exit")
	fmt.Fprintf(&b, `
Signals:
  HUP              re-read CONFIG and apply the difference; a file with errors
                   changes nothing and the log says why (as reloadconfig)
  USR1             reopen the workers' log files, after logrotate moved them
  TERM, INT, QUIT  stop every watcher gracefully (stop_signal, then SIGKILL
                   after graceful_timeout) and exit
  USR2             upgrade in place: execute the arbiter's binary again (a new
                   version installed at its path), same pid, every worker,
                   socket and output pipe kept; a binary that cannot take
                   over leaves this one running (as circusctl upgrade)

Under systemd (Type=notify, NOTIFY_SOCKET set) the arbiter reports READY=1
once its autostart watchers are up, RELOADING=1 and READY=1 around each
reload, STOPPING=1, a STATUS= line, and WATCHDOG=1 when WatchdogSec= is set.
As a container's PID 1 it reaps every orphan.

Exit status:
  0  stopped cleanly by a signal or quit; --validate found no problem
  1  an error: the configuration, a socket or endpoint that cannot be bound,
     a failure while running
  2  a command line that does not parse
  3  a watcher marked critical gave up

Documentation: %s
(docs/deploy.md for systemd, containers and static builds). The control
command is circusctl; circusctl --help lists its commands.
`, docsURL)
	io.WriteString(w, b.String())
}

// flagRow writes one flag's help, its text wrapped to fit 80 columns.
func flagRow(b *strings.Builder, name, text string) {
	const indent = 27
	line := fmt.Sprintf("  --%-*s", indent-4, name)
	col := len(line)
	for _, word := range strings.Fields(text) {
		if col > indent && col+1+len(word) > 79 {
			b.WriteString(line + "\n")
			line, col = strings.Repeat(" ", indent), indent
		}
		line += " " + word
		col += 1 + len(word)
	}
	b.WriteString(line + "\n")
}
