package arbiter_test

import (
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// A worker gets the socket dialects its watcher asks for (issue 17): a
// command that names $(circus.sockets.NAME) gets that alone, no
// LISTEN_FDS to adopt the same fd by a second time; listen_fds overrides
// the rule both ways; the socket is fd 3 in every case.
func TestSocketDialects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		keys    string // after cmd
		fdArg   bool   // cmd names the socket
		systemd bool   // LISTEN_* expected
	}{
		{"command names the socket", "", true, false},
		{"command names the socket, listen_fds = true", "listen_fds = true\n", true, true},
		{"use_sockets", "use_sockets = true\n", false, true},
		{"use_sockets, listen_fds = false", "use_sockets = true\nlisten_fds = false\n", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := filepath.Join(t.TempDir(), "state.json")
			cmd := "WORKER describe " + out
			if tt.fdArg {
				cmd += " $(circus.sockets.web)"
			}
			start(t, fmt.Sprintf("[socket:web]\nhost = 127.0.0.1\nport = 0\n\n[watcher:w]\ncmd = %s\n%s", cmd, tt.keys))
			var st testproc.State
			waitFor(t, "the worker's report", 10*time.Second, func() bool {
				var ok bool
				st, ok = testproc.ReadState(out)
				return ok
			})
			want := map[string]string{"LISTEN_FDS": "", "LISTEN_FDNAMES": "", "LISTEN_PID": ""}
			if tt.systemd {
				want = map[string]string{"LISTEN_FDS": "1", "LISTEN_FDNAMES": "web", "LISTEN_PID": strconv.Itoa(st.Pid)}
			}
			for k, v := range want {
				if got, ok := st.Env[k]; got != v || ok != (v != "") {
					t.Errorf("worker's %s = %q (set: %v), want %q", k, got, ok, v)
				}
			}
			if got := fmt.Sprint(st.Fds); got != "[0 1 2 3]" {
				t.Errorf("worker's fds = %s, want [0 1 2 3]", got)
			}
		})
	}
}
