package arbiter

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/config"
)

func TestSplitWords(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  bool
	}{
		{"plain", "serve --fd 3", []string{"serve", "--fd", "3"}, false},
		{"extra spaces and newlines", "  a\t b\n c  ", []string{"a", "b", "c"}, false},
		{"single quotes are literal", `echo 'a "b" \c'`, []string{"echo", `a "b" \c`}, false},
		{"double quotes escape", `echo "a \"b\" \$x \n"`, []string{"echo", `a "b" $x \n`}, false},
		{"backslash outside quotes", `a\ b c\"d`, []string{"a b", `c"d`}, false},
		{"adjacent quoting joins", `--name="web srv"x`, []string{"--name=web srvx"}, false},
		{"empty quoted word", `a '' b`, []string{"a", "", "b"}, false},
		{"unclosed quote", `echo "oops`, nil, true},
		{"trailing backslash", `echo \`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := splitWords(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("splitWords(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("splitWords(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// Circus's argv rules, including its issue665 shell configs.
func TestWorkerArgv(t *testing.T) {
	tests := []struct {
		name string
		w    config.Watcher
		want []string
	}{
		{"cmd and args", config.Watcher{Cmd: "prog --fd $(circus.sockets.web)", Args: "--wid $(circus.wid) '$(circus.env.greeting)'"},
			[]string{"prog", "--fd", "3", "--wid", "2", "hi there"}},
		{"shell", config.Watcher{Cmd: "foo", Args: "--fd", Shell: true}, []string{"/bin/sh", "-c", "foo --fd"}},
		{"shell with args", config.Watcher{Cmd: "foo", Args: "--fd", Shell: true, ShellArgs: "bar baz qux"},
			[]string{"/bin/sh", "-c", "foo --fd", "bar", "baz", "qux"}},
		{"shell_args ignored without shell", config.Watcher{Cmd: "foo", Args: "--fd", ShellArgs: "bar baz qux"}, []string{"foo", "--fd"}},
		{"shell quotes words", config.Watcher{Cmd: `echo "a b" 'it''s'`, Shell: true}, []string{"/bin/sh", "-c", `echo 'a b' its`}},
		{"unknown variable kept", config.Watcher{Cmd: "prog $(circus.nope)"}, []string{"prog", "$(circus.nope)"}},
	}
	lookup := spawnVars(&config.Watcher{}, 2, map[string]int{"web": 3}, []string{"GREETING=hi there"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := workerArgv(&tt.w, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("workerArgv mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
