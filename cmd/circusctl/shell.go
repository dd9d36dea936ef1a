package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"strings"
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
		words, err := splitWords(line)
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

// splitWords splits a shell line into words as Python's shlex.split does
// for Circus's shell: blanks separate words; single quotes keep everything
// up to the next one; double quotes keep everything but a backslash
// before ", \, $ or `; a backslash outside quotes keeps the next
// character.
func splitWords(line string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("no closing quotation")
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
			}
			if i == len(line) {
				return nil, errors.New("no closing quotation")
			}
			inWord = true
		case ch == '\\':
			if i+1 == len(line) {
				return nil, errors.New("no escaped character")
			}
			i++
			w.WriteByte(line[i])
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}
