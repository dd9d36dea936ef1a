package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// With no command, circusctl is Circus's shell: version, status, then a
// prompt before each line, run as a command line with the global options.
func TestShell(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	input := strings.Join([]string{
		"list",
		"",
		"   status   'web srv'  ",
		"set sleeper env 'A=1, B=2' numprocesses \"3\"",
		"nope now",
		"options nope",
		"help numwatchers",
		"incr sleeper --waiting",
		"say 'unterminated",
	}, "\n") + "\n"
	r := runCtl(t, nil, input, "--endpoint", arb.endpoint())

	want := "circusctl (Ringmaster) " + buildVersion() + "\n" +
		"circusd-stats: active\nsleeper: active\nweb srv: stopped\n" +
		prompt + "circusd-stats,sleeper,web srv\n" +
		prompt +
		prompt + "active\n" +
		prompt + "ok\n" +
		prompt +
		prompt +
		prompt + "usage: circusctl numwatchers\n\nGet the number of watchers.\n\nPrints how many watchers the arbiter has.\n" +
		prompt + "3\n" +
		prompt +
		prompt + "\n"
	if r.code != exitOK || r.stdout != want {
		t.Errorf("shell = exit %d, stdout\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	wantErr := "*** Unknown syntax: nope now\nerror: program nope not found\n*** no closing quotation\n"
	if r.stderr != wantErr {
		t.Errorf("shell stderr = %q, want %q", r.stderr, wantErr)
	}
	var got []string
	for _, req := range arb.requests() {
		got = append(got, req.command)
	}
	if want := []string{"status", "list", "status", "set", "options", "incr"}; !slices.Equal(got, want) {
		t.Errorf("shell sent %v, want %v", got, want)
	}
	if reqs := arb.requests(); len(reqs) > 3 {
		want := map[string]string{"name": `"sleeper"`, "options": `{"env":{"A":"1","B":"2"},"numprocesses":3}`}
		if diff := cmp.Diff(want, reqs[3].props); diff != "" {
			t.Errorf("shell set sent (-want +got):\n%s", diff)
		}
	}
}

// exit leaves the shell, and nothing after it runs; quit is the arbiter's
// command, as in Circus.
func TestShellExit(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	r := runCtl(t, nil, "quit --waiting\nexit\nnumwatchers\n", "--endpoint", arb.endpoint(), "--json")
	var got []string
	for _, req := range arb.requests() {
		got = append(got, req.command)
	}
	if want := []string{"status", "quit"}; r.code != exitOK || !slices.Equal(got, want) {
		t.Errorf("shell with quit, exit = exit %d, sent %v; want exit 0, sent %v", r.code, got, want)
	}
	if n := strings.Count(r.stdout, `"status": "ok"`); n != 2 {
		t.Errorf("shell --json printed %d replies, want 2:\n%s", n, r.stdout)
	}
}

// The shell in a real process on a pipe, ended by closing it (Ctrl-D).
func TestShellProcess(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	cmd := exec.Command(os.Args[0], "--endpoint", arb.endpoint())
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stdin = strings.NewReader("numprocesses sleeper\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := prompt + "2\n" + prompt + "\n"; !strings.HasSuffix(string(out), want) {
		t.Errorf("shell printed %q, want it to end with %q", out, want)
	}
}

// Every command has its own help, from COMMAND --help, -h and help COMMAND.
func TestHelp(t *testing.T) {
	t.Parallel()
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}, {"help", c.name}, {"--help", c.name}} {
			r := runCtl(t, nil, "", args...)
			if r.code != exitOK || !strings.HasPrefix(r.stdout, "usage: "+c.usage()+"\n\n"+c.short+".\n") || r.stderr != "" {
				t.Errorf("circusctl %s = exit %d, stdout %q, stderr %q", strings.Join(args, " "), r.code, r.stdout, r.stderr)
			}
			for _, f := range c.flags {
				if !strings.Contains(r.stdout, "\n  --"+f.name) {
					t.Errorf("circusctl %s does not list --%s:\n%s", strings.Join(args, " "), f.name, r.stdout)
				}
			}
		}
	}
	r := runCtl(t, nil, "", "--help")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, usageLine+"\n") {
		t.Errorf("circusctl --help = exit %d, %q", r.code, r.stdout)
	}
	for _, name := range commandNames() {
		if !strings.Contains(r.stdout, "\n  "+name+" ") {
			t.Errorf("circusctl --help does not list %s", name)
		}
	}
	if r2 := runCtl(t, nil, "", "help"); r2.stdout != r.stdout || r2.code != exitOK {
		t.Errorf("circusctl help = exit %d, %q; want circusctl --help's", r2.code, r2.stdout)
	}
	if r := runCtl(t, nil, "", "help", "nope"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "nope"`) {
		t.Errorf("circusctl help nope = exit %d, %q", r.code, r.stderr)
	}
	if r := runCtl(t, nil, "", "help", "incrr"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "incrr"; did you mean "incr"?`) {
		t.Errorf("circusctl help incrr = exit %d, %q; want the nearest command", r.code, r.stderr)
	}
	if r := runCtl(t, nil, "", "help", "completion"); r.code != exitOK || !strings.HasPrefix(r.stdout, "usage: circusctl completion bash|zsh") {
		t.Errorf("circusctl help completion = exit %d, %q", r.code, r.stdout)
	}
}

// syncBuffer is a bytes.Buffer for a run still writing while the test
// reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Ctrl-C (ctx ending) leaves the shell while it waits at the prompt for
// a line that does not come, as Circus's shell leaves on
// KeyboardInterrupt; the reader goroutine ends with its input.
func TestShellInterrupt(t *testing.T) {
	t.Parallel()
	arb := newArbiter(t, nil)
	pr, pw := io.Pipe()
	defer pw.Close()
	var out syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--endpoint", arb.endpoint()}, environ{stdin: pr, stdout: &out, stderr: &out, getenv: func(string) string { return "" }})
	}()
	if _, err := io.WriteString(pw, "numwatchers\n"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); strings.Count(out.String(), prompt) < 2; {
		if time.Now().After(deadline) {
			t.Fatalf("no second prompt; output so far %q", out.String())
		}
		runtime.Gosched()
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK || !strings.HasSuffix(out.String(), prompt+"3\n"+prompt+"\n") {
			t.Errorf("interrupted shell = exit %d, output %q", code, out.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the shell did not end with its context")
	}
}
