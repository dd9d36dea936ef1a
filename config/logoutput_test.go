package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLogOutput(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in   string
		want LogTarget
	}{
		{"-", LogTarget{Kind: "stdout"}},
		{"stdout", LogTarget{Kind: "stdout"}},
		{"stderr", LogTarget{Kind: "stderr"}},
		{"/var/log/circus.log", LogTarget{Kind: "file", Path: "/var/log/circus.log"}},
		{"syslog://", LogTarget{Kind: "syslog", Path: "/dev/log", Facility: 1}},
		{"syslog://?local3", LogTarget{Kind: "syslog", Path: "/dev/log", Facility: 19}},
		{"syslog:///dev/log?daemon", LogTarget{Kind: "syslog", Path: "/dev/log", Facility: 3}},
		{"syslog:///run/rsyslog/sock", LogTarget{Kind: "syslog", Path: "/run/rsyslog/sock", Facility: 1}},
		{"syslog://logs.example.com", LogTarget{Kind: "syslog", Addr: "logs.example.com:514", Facility: 1}},
		{"syslog://127.0.0.1:5514?LOCAL0", LogTarget{Kind: "syslog", Addr: "127.0.0.1:5514", Facility: 16}},
		{"syslog://[::1]:5514?auth", LogTarget{Kind: "syslog", Addr: "[::1]:5514", Facility: 4}},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLogOutput(tt.in)
			if err != nil {
				t.Fatalf("ParseLogOutput(%q) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseLogOutput(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	for _, tt := range []struct{ in, want string }{
		{"syslog://host?nope", `unknown syslog facility "nope" (want one of auth, authpriv, cron`},
		{"syslog://host/dev/log", "names a host or a local socket's path, not both"},
		{"syslog://host?facility=user", "want syslog://HOST[:PORT][?FACILITY]"},
		{"syslog:foo", "want syslog://HOST[:PORT][?FACILITY]"},
		{"syslog://:514", "the syslog host is empty"},
	} {
		if _, err := ParseLogOutput(tt.in); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseLogOutput(%q) = %v, want an error with %q", tt.in, err, tt.want)
		}
	}
}
