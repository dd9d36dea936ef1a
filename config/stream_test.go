package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestStreams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		keys      string
		stdout    Stream
		stderr    Stream
		wantErrs  []string
		wantWarns []string
	}{
		{name: "none"},
		{name: "file with rotation", keys: `
stdout_stream.class = FileStream
stdout_stream.filename = /var/log/web.out.log
stdout_stream.max_bytes = 10485760
stdout_stream.backup_count = 5
stdout_stream.time_format = %Y-%m-%d %H:%M:%S
stderr_stream.class = TimedRotatingFileStream
stderr_stream.rotate_when = midnight
stderr_stream.filename = /var/log/web.err.log
`,
			stdout: Stream{Class: "FileStream", Filename: "/var/log/web.out.log", MaxBytes: 10485760, BackupCount: 5, TimeFormat: "%Y-%m-%d %H:%M:%S"},
			stderr: Stream{Class: "TimedRotatingFileStream", Filename: "/var/log/web.err.log", RotateWhen: "MIDNIGHT", RotateInterval: 1}},
		{name: "filename alone is a FileStream", keys: "stdout_stream.filename = out.log\nstdout_stream.max_bytes = 10M\n",
			stdout: Stream{Class: "FileStream", Filename: "out.log", MaxBytes: 10 << 20}},
		{name: "module path", keys: "stdout_stream.class = circus.stream.FileStream\nstderr_stream.class = circus.stream.file_stream.WatchedFileStream\n",
			stdout: Stream{Class: "FileStream"}, stderr: Stream{Class: "WatchedFileStream"}},
		{name: "timed", keys: "stdout_stream.class = TimedRotatingFileStream\nstdout_stream.rotate_when = W3\nstdout_stream.rotate_interval = 2\nstdout_stream.utc = False\nstdout_stream.backup_count = 4\n",
			stdout: Stream{Class: "TimedRotatingFileStream", RotateWhen: "W3", RotateInterval: 2, BackupCount: 4}},
		{name: "fancy", keys: "stdout_stream.class = FancyStdoutStream\nstdout_stream.color = Cyan\n",
			stdout: Stream{Class: "FancyStdoutStream", Color: "cyan", TimeFormat: "%Y-%m-%d %H:%M:%S"}},
		{name: "queue", keys: "stderr_stream.class = QueueStream\n", stderr: Stream{Class: "QueueStream"}},
		{name: "unknown class", keys: "stdout_stream.class = FileStreem\n",
			wantErrs: []string{`t.ini:3: [watcher:web] stdout_stream.class: unknown stream class "FileStreem"; the built-in ones are FileStream,`}},
		{name: "python class", keys: "stderr_stream.class = myapp.streams.Kafka\n",
			wantErrs: []string{`t.ini:3: [watcher:web] stderr_stream.class: "myapp.streams.Kafka" is a Python stream class, which Ringmaster cannot load`}},
		{name: "neither class nor filename", keys: "stdout_stream.max_bytes = 10\n",
			wantErrs: []string{"t.ini:3: [watcher:web] stdout_stream.max_bytes: a stream needs a class"}},
		{name: "bad rotate_when", keys: "stdout_stream.class = TimedRotatingFileStream\nstdout_stream.rotate_when = W7\n",
			wantErrs: []string{`t.ini:4: [watcher:web] stdout_stream.rotate_when: "W7" is not S, M, H, D, MIDNIGHT or W0..W6`}},
		{name: "missing rotate_when", keys: "stdout_stream.class = TimedRotatingFileStream\n",
			wantErrs: []string{"t.ini:3: [watcher:web] stdout_stream.class: TimedRotatingFileStream needs stdout_stream.rotate_when"}},
		{name: "bad numbers", keys: "stdout_stream.class = FileStream\nstdout_stream.max_bytes = lots\nstdout_stream.backup_count = -1\n",
			wantErrs: []string{
				`t.ini:4: [watcher:web] stdout_stream.max_bytes: "lots" is not a size in bytes`,
				"t.ini:5: [watcher:web] stdout_stream.backup_count: -1 is negative",
			}},
		{name: "bad time_format", keys: "stdout_stream.class = FileStream\nstdout_stream.time_format = %Y %Q\n",
			wantErrs: []string{"t.ini:4: [watcher:web] stdout_stream.time_format: %Q"}},
		{name: "bad colour", keys: "stdout_stream.class = FancyStdoutStream\nstdout_stream.color = mauve\n",
			wantErrs: []string{`t.ini:4: [watcher:web] stdout_stream.color: "mauve" is not a colour`}},
		{name: "option of another class", keys: "stdout_stream.class = WatchedFileStream\nstdout_stream.max_bytes = 100\n",
			stdout:    Stream{Class: "WatchedFileStream"},
			wantWarns: []string{"t.ini:4: [watcher:web] stdout_stream.max_bytes: has no effect with WatchedFileStream, ignored"}},
		{name: "typo and obsolete", keys: "stdout_stream.class = FileStream\nstdout_stream.max_byte = 100\nstdout_stream.refresh_time = 0.3\n",
			stdout: Stream{Class: "FileStream"},
			wantWarns: []string{
				"t.ini:4: [watcher:web] stdout_stream.max_byte: unknown stream option, ignored; did you mean stdout_stream.max_bytes?",
				"t.ini:5: [watcher:web] stdout_stream.refresh_time: obsolete",
			}},
		{name: "closed stdout", keys: "close_child_stdout = true\nstdout_stream.class = FileStream\n",
			stdout:    Stream{Class: "FileStream"},
			wantWarns: []string{"t.ini:3: [watcher:web] close_child_stdout: the worker's stdout goes to /dev/null"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("t.ini", []byte("[watcher:web]\ncmd = web\n"+strings.TrimLeft(tt.keys, "\n")))
			if len(tt.wantErrs) > 0 || err != nil {
				checkErrors(t, "Parse()", err, tt.wantErrs)
				return
			}
			w := c.Watchers[0]
			if diff := cmp.Diff(tt.stdout, w.Stdout); diff != "" {
				t.Errorf("Stdout (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.stderr, w.Stderr); diff != "" {
				t.Errorf("Stderr (-want +got):\n%s", diff)
			}
			var warns []string
			for _, w := range c.Warnings {
				warns = append(warns, w.Error())
			}
			checkMessages(t, "Warnings", warns, tt.wantWarns)
		})
	}
}

// A stream option changed at run time (circusctl set) goes through the
// same checks.
func TestStreamWith(t *testing.T) {
	t.Parallel()
	w, err := NewWatcher("web", map[string]string{"cmd": "web", "stdout_stream.class": "FileStream", "stdout_stream.filename": "a.log"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := w.With(map[string]string{"stdout_stream.max_bytes": "1024"})
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stream{Class: "FileStream", Filename: "a.log", MaxBytes: 1024}); w2.Stdout != want {
		t.Errorf("Stdout = %+v, want %+v", w2.Stdout, want)
	}
	if _, err := w.With(map[string]string{"stdout_stream.rotate_when": "X", "stdout_stream.class": "TimedRotatingFileStream"}); err == nil {
		t.Error("With(rotate_when = X) succeeded")
	}
}
