package main

import (
	"fmt"
	"io"
	"strings"
)

const usageLine = "usage: circusctl [options] command [args]"

// docsURL is where the operator's documentation lives (docs/ in the
// source tree).
const docsURL = "https://github.com/ringmaster-dev/ringmaster/tree/main/docs"

// globalHelp lists the global options; --help prints it.
var globalHelp = [][2]string{
	{"--endpoint ENDPOINT", "the control endpoint (default $CIRCUSCTL_ENDPOINT, else " + defaultControl + "); for listen the events endpoint (default " + defaultSub + "), for top the stats endpoint (default " + defaultStats + ")"},
	{"--timeout SECONDS", "how long to wait for the connection, and then for the reply (default 5)"},
	{"--json", "print the reply as JSON"},
	{"--prettify", "with --json, indent it and sort its keys"},
	{"--version", "print circusctl's version"},
	{"--help", "print this help; circusctl help COMMAND prints a command's"},
}

// extraCommands are circusctl's own commands, not in the command table
// because they print from it.
var extraCommands = [][2]string{
	{"help", "Show the help of circusctl or of a command"},
	{"completion", "Print a shell completion script (bash, zsh)"},
}

func printHelp(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\nControls a Circus or Ringmaster arbiter.\n\nCommands:\n", usageLine)
	var rows [][]string
	for _, c := range commands {
		rows = append(rows, []string{"  " + c.name, c.short})
	}
	for _, c := range extraCommands {
		rows = append(rows, []string{"  " + c[0], c[1]})
	}
	b.WriteString(table(nil, rows, 3))
	b.WriteString("\n\nOptions (before the command):\n")
	rows = rows[:0]
	for _, o := range globalHelp {
		rows = appendWrapped(rows, "  "+o[0], o[1])
	}
	b.WriteString(table(nil, rows, 3))
	b.WriteString(`

With no command, circusctl reads commands from its input, one a line, after
the prompt "(circusctl) "; end of input (Ctrl-D) or exit leaves, and quit
stops the arbiter, as in Circus.

Exit status: 0 success; 3 an error reply (0 with --json); 1 a timeout, a
connection failure or an argument that does not convert; 2 a command line
that does not parse.

Documentation: ` + docsURL + `
`)
	io.WriteString(w, b.String())
}

func printCommandHelp(w io.Writer, c *command) {
	var b strings.Builder
	fmt.Fprintf(&b, "usage: %s\n\n%s.\n", c.usage(), c.short)
	if c.long != "" {
		fmt.Fprintf(&b, "\n%s\n", c.long)
	}
	if len(c.flags) > 0 {
		b.WriteString("\nFlags:\n")
		var rows [][]string
		for _, f := range c.flags {
			name := "  --" + f.name
			if f.value != "" {
				name += " " + f.value
			}
			rows = appendWrapped(rows, name, f.help)
		}
		b.WriteString(table(nil, rows, 3))
		b.WriteString("\n")
	}
	io.WriteString(w, b.String())
}

// helpCommand is "help [COMMAND]".
func helpCommand(e environ, args []string) int {
	switch {
	case len(args) == 0:
		printHelp(e.stdout)
		return exitOK
	case len(args) > 1:
		fmt.Fprintf(e.stderr, "circusctl help: too many arguments\nusage: circusctl help [COMMAND]\n")
		return exitUsage
	}
	if c := lookup(args[0]); c != nil {
		printCommandHelp(e.stdout, c)
		return exitOK
	}
	switch args[0] {
	case "help":
		fmt.Fprintf(e.stdout, "usage: circusctl help [COMMAND]\n\nPrints the list of commands, or COMMAND's usage and flags.\n")
		return exitOK
	case "completion":
		fmt.Fprint(e.stdout, completionHelp)
		return exitOK
	}
	fmt.Fprintf(e.stderr, "circusctl help: %s\n", unknownCommand(args[0]))
	return exitUsage
}

// appendWrapped appends a two-column help row, its text wrapped at about
// 56 columns onto rows of its own, so that help fits a terminal.
func appendWrapped(rows [][]string, name, text string) [][]string {
	var line string
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > 56 {
			rows = append(rows, []string{name, line})
			name, line = "", ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return append(rows, []string{name, line})
}
