package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestHooks(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		ini       string
		want      map[string]Hook
		wantErrs  []string
		wantWarns []string
	}{
		{
			name: "command",
			ini:  "hooks.before_start = /usr/local/bin/announce --to ops\n",
			want: map[string]Hook{"before_start": {Command: "/usr/local/bin/announce --to ops", Timeout: 30 * time.Second}},
		},
		{
			name: "command with flag and commas of its own",
			ini:  "hooks.after_spawn = /bin/sh -c 'echo a, b' , true\nhook_timeout = 2.5\n",
			want: map[string]Hook{"after_spawn": {Command: "/bin/sh -c 'echo a, b'", IgnoreErrors: true, Timeout: 2500 * time.Millisecond}},
		},
		{
			name: "a comma not followed by a flag is the command's",
			ini:  "hooks.before_stop = ./notify.sh a,b\n",
			want: map[string]Hook{"before_stop": {Command: "./notify.sh a,b", Timeout: 30 * time.Second}},
		},
		{
			name:      "Circus's Python callable",
			ini:       "hooks.before_start = tests.test_config.hook, false\n",
			want:      map[string]Hook{"before_start": {Command: "tests.test_config.hook", Python: true, Timeout: 30 * time.Second}},
			wantWarns: []string{`t.ini:3: [watcher:w] hooks.before_start: "tests.test_config.hook" is a Python hook, which Ringmaster cannot run; ignored`},
		},
		{
			name:     "Python callable with a bad flag",
			ini:      "hooks.before_start = my.hook, maybe\n",
			wantErrs: []string{`t.ini:3: [watcher:w] hooks.before_start: "maybe" is not a boolean`},
		},
		{
			name:     "empty",
			ini:      "hooks.after_stop =\n",
			wantErrs: []string{"t.ini:3: [watcher:w] hooks.after_stop: empty: name the command to run"},
		},
		{
			name:      "a hook Circus does not have",
			ini:       "hooks.before_strat = /bin/true\n",
			want:      map[string]Hook{"before_strat": {Command: "/bin/true", Timeout: 30 * time.Second}},
			wantWarns: []string{"t.ini:3: [watcher:w] hooks.before_strat: no such hook, so it never runs; did you mean hooks.before_start?"},
		},
		{
			name:      "extended_stats",
			ini:       "hooks.extended_stats = /bin/true\n",
			want:      map[string]Hook{"extended_stats": {Command: "/bin/true", Timeout: 30 * time.Second}},
			wantWarns: []string{"t.ini:3: [watcher:w] hooks.extended_stats: not supported"},
		},
		{
			name: "hook_timeout applies to every hook, reported once",
			ini:  "hooks.before_start = /bin/true\nhooks.after_start = /bin/true\nhook_timeout = 0\n",
			wantErrs: []string{
				"t.ini:5: [watcher:w] hook_timeout: must be more than 0",
			},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte("[watcher:w]\ncmd = w\n"+tt.ini))
			checkErrors(t, "Parse()", err, tt.wantErrs)
			if err != nil {
				return
			}
			if diff := cmp.Diff(tt.want, c.Watchers[0].Hooks); diff != "" {
				t.Errorf("Hooks (-want +got):\n%s", diff)
			}
			var warns []string
			for _, w := range c.Warnings {
				warns = append(warns, w.Error())
			}
			checkMessages(t, "Warnings", warns, tt.wantWarns)
		})
	}
}

// A dotted name that is a program on PATH is a command, not a Python
// callable. Not parallel: it sets PATH.
func TestHookDottedProgramOnPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "notify.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	c, err := Parse("t.ini", []byte("[watcher:w]\ncmd = w\nhooks.after_start = notify.sh, true\nhooks.before_stop = other.sh\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Hook{
		"after_start": {Command: "notify.sh", IgnoreErrors: true, Timeout: 30 * time.Second},
		"before_stop": {Command: "other.sh", Python: true, Timeout: 30 * time.Second},
	}
	if diff := cmp.Diff(want, c.Watchers[0].Hooks); diff != "" {
		t.Errorf("Hooks (-want +got):\n%s", diff)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), `"other.sh" is a Python hook`) {
		t.Errorf("warnings = %v, want one for other.sh", c.Warnings)
	}
}

func TestHealthCmd(t *testing.T) {
	t.Parallel()
	c, err := Parse("h.ini", []byte(`[watcher:w]
cmd = w
health.cmd = /usr/local/bin/check --wid $(circus.wid)
health.timeout = 3
`))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Watchers[0].Health
	want := Health{Cmd: "/usr/local/bin/check --wid $(circus.wid)", Interval: 5 * time.Second, Timeout: 3 * time.Second, Failures: 3}
	if h != want {
		t.Errorf("Health = %+v, want %+v", h, want)
	}
	if !h.Enabled() || h.Target() != want.Cmd || h.Key() != "health.cmd" {
		t.Errorf("Enabled, Target, Key = %v, %q, %q", h.Enabled(), h.Target(), h.Key())
	}

	_, err = Parse("h.ini", []byte(`[watcher:w]
cmd = w
health.url = http://127.0.0.1:8000/
health.cmd = check
`))
	checkErrors(t, "Parse(url and cmd)", err, []string{"h.ini:4: [watcher:w] health.cmd: a watcher has one check, not health.url and health.cmd"})
}
