package main

import (
	"bufio"
	"context"
	"fmt"
	"runtime/debug"

	"github.com/ringmaster-dev/ringmaster/internal/shlex"
)

const prompt = "(circusctl) "

// shell is Circus's interactive circusctl: the version, the status of
// every watcher, then each line of input run as a command line (split as
// a POSIX shell splits words, quotes included) after the prompt, until
// end of input. Every command works as on the command line, with the
// global options given before; their exit statuses are dropped.
//
// Departures from Circus's shell (Python's cmd.Cmd): an empty line does
// nothing, where cmd.Cmd repeats the last command (an incr, say); and exit
// leaves, since quit is the arbiter's command (Circus has no exit).
//
// Ctrl-C ends the shell, even while a command such as listen runs.
//
// A goroutine reads the input so that ctx can end the shell while a read
// is pending. It ends at end of input, or at the next line read once the
// shell has returned; a read from a terminal cannot be interrupted, so on
// Ctrl-C it is still reading when run returns, and main exits under it.
func shell(ctx context.Context, g globals, e environ) int {
	fmt.Fprintf(e.stdout, "circusctl (Ringmaster) %s\n", buildVersion())
	g.exec(ctx, e, []string{"status"})

	lines := make(chan string)
	done := make(chan struct{})
	defer close(done)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(e.stdin)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-done:
				return
			}
		}
	}()

	for {
		fmt.Fprint(e.stdout, prompt)
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
		}
		if !ok {
			// Circus's postloop: the prompt's line ends.
			fmt.Fprintln(e.stdout)
			return exitOK
		}
		words, err := shlex.Split(line)
		if err != nil {
			fmt.Fprintf(e.stderr, "*** %v\n", err)
			continue
		}
		if len(words) == 0 {
			continue
		}
		switch {
		case words[0] == "exit" || words[0] == "EOF":
			return exitOK
		case words[0] != "help" && words[0] != "completion" && lookup(words[0]) == nil:
			// cmd.Cmd's words, which Circus's shell users know.
			fmt.Fprintf(e.stderr, "*** Unknown syntax: %s\n", line)
			continue
		}
		g.exec(ctx, e, words)
		if ctx.Err() != nil {
			fmt.Fprintln(e.stdout)
			return exitOK
		}
	}
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "(devel)"
}
