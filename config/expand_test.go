package config

import (
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"wid": "2", "sockets.web": "3", "env.path": "/bin", "numprocesses": "4"}
	lookup := func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}
	tests := []struct {
		in, want string
	}{
		{"srv --fd $(circus.sockets.web)", "srv --fd 3"},
		{"srv --fd ((circus.sockets.web))", "srv --fd 3"},
		{"$(CIRCUS.Sockets.WEB)", "3"},
		{"w$(circus.wid)-of-$(circus.numprocesses)", "w2-of-4"},
		{"$(circus.env.PATH):/usr/bin", "/bin:/usr/bin"},
		{"legacy $WID", "legacy 2"},
		{"$WIDTH stays", "$WIDTH stays"},
		{"$(circus.unknown) stays", "$(circus.unknown) stays"},
		{"$(circus.sockets.web", "$(circus.sockets.web"},
		{"((circus.sockets.web)", "((circus.sockets.web)"},
		{"$(circus.) $(other.x) $ (( $", "$(circus.) $(other.x) $ (( $"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			if got := Expand(tt.in, lookup); got != tt.want {
				t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSocketRefs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		w    Watcher
		want []string
	}{
		{"none", Watcher{Cmd: "sleep 1"}, nil},
		{"cmd args shell_args in order, once, lower-cased",
			Watcher{Cmd: "srv $(circus.sockets.B)", Args: "((circus.sockets.a)) $(circus.sockets.b)", ShellArgs: "$(circus.sockets.c-d)"},
			[]string{"b", "a", "c-d"}},
		{"not sockets", Watcher{Cmd: "$(circus.wid) $(circus.env.sockets)"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tt.want, tt.w.SocketRefs()); diff != "" {
				t.Errorf("SocketRefs() (-want +got):\n%s", diff)
			}
		})
	}
}

func ExampleExpand() {
	// What the arbiter does at spawn: the fd of each socket and the
	// process's wid, on top of what Load already substituted.
	vars := map[string]string{"sockets.web": "3", "wid": "1"}
	cmd := Expand("server --fd $(circus.sockets.web) --id $WID", func(key string) (string, bool) {
		v, ok := vars[key]
		return v, ok
	})
	fmt.Println(cmd)
	// Output: server --fd 3 --id 1
}
