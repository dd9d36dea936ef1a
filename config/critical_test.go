package config

import (
	"strings"
	"testing"
)

func TestCritical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, keys string
		want       bool
		err, warn  string
	}{
		{name: "default", keys: "", want: false},
		{name: "on", keys: "critical = true", want: true},
		{name: "python's spelling", keys: "critical = True", want: true},
		{name: "off", keys: "critical = no", want: false},
		{name: "not a boolean", keys: "critical = yes please", err: `c.ini:3: [watcher:api] critical: "yes please" is not a boolean`},
		{name: "never gives up", keys: "critical = true\nmax_retry = -1\nflapping.max_retry = -1", want: true,
			warn: "c.ini:3: [watcher:api] critical: never takes effect"},
		{name: "flapping off, retries for ever", keys: "critical = true\nmax_retry = -1\ncheck_flapping = false", want: true,
			warn: "c.ini:3: [watcher:api] critical: never takes effect"},
		{name: "gives up on flapping", keys: "critical = true\nmax_retry = -1", want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("c.ini", []byte("[watcher:api]\ncmd = api\n"+tt.keys+"\n"))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Parse = %v, want an error %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Watchers[0].Critical; got != tt.want {
				t.Errorf("Critical = %v, want %v", got, tt.want)
			}
			var warns []string
			for _, w := range c.Warnings {
				warns = append(warns, w.Error())
			}
			if got := strings.Join(warns, "\n"); tt.warn == "" && got != "" || !strings.Contains(got, tt.warn) {
				t.Errorf("warnings = %q, want %q", got, tt.warn)
			}
		})
	}
}
