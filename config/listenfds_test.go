package config

import (
	"fmt"
	"strings"
	"testing"
)

// Which dialects a watcher's workers get (issue 17): Circus's alone when
// the command names a socket, systemd's too when it names none, and
// listen_fds overriding both ways.
func TestSystemdDialect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string // the [watcher:w] keys
		want bool
	}{
		{"command names a socket", "cmd = gunicorn --bind fd://$(circus.sockets.web) app:app\n", false},
		{"args name a socket", "cmd = uwsgi\nargs = --http-socket fd://$(circus.sockets.web)\n", false},
		{"double-paren reference", "cmd = srv --fd ((circus.sockets.web))\n", false},
		{"shell_args name a socket", "cmd = srv\nshell = true\nshell_args = $(circus.sockets.web)\n", false},
		{"no reference, use_sockets", "cmd = gunicorn app:app\nuse_sockets = true\n", true},
		{"no reference, no socket", "cmd = sleep 60\n", true},
		{"reference and listen_fds = true", "cmd = srv --fd $(circus.sockets.web)\nlisten_fds = true\n", true},
		{"reference and listen_fds = yes", "cmd = srv --fd $(circus.sockets.web)\nlisten_fds = yes\n", true},
		{"use_sockets and listen_fds = false", "cmd = srv\nuse_sockets = true\nlisten_fds = false\n", false},
		{"reference and listen_fds = auto", "cmd = srv --fd $(circus.sockets.web)\nlisten_fds = Auto\n", false},
		{"use_sockets and listen_fds = auto", "cmd = srv\nuse_sockets = true\nlisten_fds = auto\n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := "[socket:web]\nhost = 127.0.0.1\nport = 8000\n\n[watcher:w]\n" + tt.body
			c, err := Parse("t.ini", []byte(data))
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", data, err)
			}
			if len(c.Warnings) > 0 {
				t.Errorf("Parse(%q) warnings = %v, want none", data, c.Warnings)
			}
			if got := c.Watchers[0].SystemdDialect(); got != tt.want {
				t.Errorf("Parse(%q).SystemdDialect() = %v, want %v", data, got, tt.want)
			}
		})
	}
}

// A bad listen_fds value is an error naming file, line and key; a
// pointless one and a misspelt key are warnings.
func TestListenFDsDiagnostics(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantErr  string
		wantWarn string
	}{
		{"not a boolean", "cmd = srv\nuse_sockets = true\nlisten_fds = sometimes\n", `t.ini:4: [watcher:w] listen_fds: "sometimes": want true (LISTEN_FDS always), false (never) or auto (only when cmd and args name no $(circus.sockets.NAME))`, ""},
		{"empty", "cmd = srv\nlisten_fds =\n", `t.ini:3: [watcher:w] listen_fds: "": want true`, ""},
		{"true without a socket", "cmd = srv\nlisten_fds = true\n", "", "t.ini:3: [watcher:w] listen_fds: true, but the watcher inherits no socket: name one with $(circus.sockets.NAME) or set use_sockets = true"},
		{"misspelt", "cmd = srv\nuse_sockets = true\nlisten_fd = true\n", "", "t.ini:4: [watcher:w] listen_fd: unknown key, kept as a free-form option; did you mean listen_fds?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := "[watcher:w]\n" + tt.body
			c, err := Parse("t.ini", []byte(data))
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Parse(%q) error = %v, want one starting %q", data, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", data, err)
			}
			if got := fmt.Sprint(c.Warnings); got != "["+tt.wantWarn+"]" {
				t.Errorf("Parse(%q) warnings = %s, want [%s]", data, got, tt.wantWarn)
			}
		})
	}
}
