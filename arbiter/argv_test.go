package arbiter

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/config"
)

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
