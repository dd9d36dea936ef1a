package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The bash script, run by bash against a line being typed, offers what
// the command table says; watcher names come from the arbiter the line
// names, through the test binary playing circusctl.
func TestBashCompletion(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	arb := newArbiter(t, nil)
	r := runCtl(t, nil, "", "completion", "bash")
	if r.code != exitOK {
		t.Fatalf("circusctl completion bash = exit %d, %q", r.code, r.stderr)
	}
	script := filepath.Join(t.TempDir(), "circusctl.bash")
	if err := os.WriteFile(script, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	ctl := os.Args[0] // the test binary, as circusctl (TestMain)
	ep := arb.endpoint()
	for _, tc := range []struct {
		line string
		want string
	}{
		{"circusctl ", strings.Join(commandNames(), " ")},
		{"circusctl st", "start stats status stop"},
		{"circusctl --j", "--json"},
		{"circusctl --endpoint tcp://127.0.0.1:1 numw", "numwatchers"},
		{"circusctl restart --", "--waiting --match"},
		{"circusctl restart --match g", "glob"},
		{"circusctl kill web --signum T", "TERM TSTP TTIN TTOU"},
		{"circusctl kill web --graceful_timeout ", ""},
		{"circusctl signal web 12 H", "HUP"},
		{"circusctl set web num", "numprocesses"},
		{"circusctl set web numprocesses ", ""},
		{"circusctl set web numprocesses 3 sh", "shell"},
		{"circusctl get web send", "send_hup"},
		{"circusctl globaloptions check", "check_delay"},
		{"circusctl help in", "incr"},
		{"circusctl completion ", "bash zsh"},
		{"circusctl rm web --", "--waiting --nostop"},
		{ctl + " --endpoint " + ep + " incr ", "circusd-stats|sleeper|web srv"},
		{ctl + " --endpoint " + ep + " status s", "sleeper"},
		{ctl + " --endpoint " + ep + " incr sleeper ", ""},
		{"circusctl --endpoint tcp://127.0.0.1:1 --timeout 1 stop ", ""}, // nothing answers: no names
	} {
		prog := `source "$1"; COMP_LINE=$2; COMP_POINT=${#COMP_LINE}; _circusctl; IFS='|'; echo "${COMPREPLY[*]}"`
		cmd := exec.Command(bash, "--norc", "--noprofile", "-c", prog, "bash", script, tc.line)
		cmd.Env = append(os.Environ(), helperEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completing %q: %v\n%s", tc.line, err, out)
		}
		got := strings.TrimSuffix(string(out), "\n")
		if tc.want != "" && !strings.Contains(tc.want, "|") {
			got = strings.ReplaceAll(got, "|", " ")
		}
		if got != tc.want {
			t.Errorf("bash completes %q to %q, want %q", tc.line, got, tc.want)
		}
	}
}

// The zsh script names every command and flag; zsh checks its syntax
// where it is installed.
func TestZshCompletion(t *testing.T) {
	t.Parallel()
	r := runCtl(t, nil, "", "completion", "zsh")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "#compdef circusctl\n") {
		t.Fatalf("circusctl completion zsh = exit %d, %q", r.code, r.stdout[:min(len(r.stdout), 100)])
	}
	for _, c := range commands {
		if !strings.Contains(r.stdout, "\n    '"+c.name+":") || !strings.Contains(r.stdout, "\n        "+c.name+") ") {
			t.Errorf("zsh completion lacks command %s", c.name)
		}
		for _, f := range c.flags {
			if !strings.Contains(r.stdout, "'--"+f.name) {
				t.Errorf("zsh completion lacks %s --%s", c.name, f.name)
			}
		}
	}
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		return
	}
	script := filepath.Join(t.TempDir(), "_circusctl")
	if err := os.WriteFile(script, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(zsh, "-n", script).CombinedOutput(); err != nil {
		t.Errorf("zsh -n: %v\n%s", err, out)
	}
}

func TestCompletionUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"completion"}, {"completion", "fish"}, {"completion", "bash", "zsh"}} {
		if r := runCtl(t, nil, "", args...); r.code != exitUsage || !strings.Contains(r.stderr, "want bash or zsh") {
			t.Errorf("circusctl %s = exit %d, %q", strings.Join(args, " "), r.code, r.stderr)
		}
	}
}
