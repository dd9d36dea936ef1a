package config

import (
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

func TestParseSignal(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    syscall.Signal
		wantErr bool
	}{
		{in: "15", want: syscall.SIGTERM},
		{in: "SIGTERM", want: syscall.SIGTERM},
		{in: "term", want: syscall.SIGTERM},
		{in: "SigInt", want: syscall.SIGINT},
		{in: "INT", want: syscall.SIGINT},
		{in: " hup ", want: syscall.SIGHUP},
		{in: "SIGRTMIN", want: 34},
		{in: "SIGRTMIN+2", want: 36},
		{in: "rtmin+1", want: 35},
		{in: "SIGRTMAX-1", want: 63},
		{in: "SIGUSR1+1", want: syscall.SIGUSR1 + 1},
		{in: "0", wantErr: true},
		{in: "65", wantErr: true},
		{in: "-9", wantErr: true},
		{in: "SIGFOO", wantErr: true},
		{in: "SIGRTMAX+1", wantErr: true},
		{in: "SIGRTMIN+x", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSignal(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseSignal(%q) = %v, %v, want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    bool
		wantErr bool
	}{
		{in: "yes", want: true}, {in: "True", want: true}, {in: "ON", want: true}, {in: "1", want: true},
		{in: "no"}, {in: "FALSE"}, {in: "off"}, {in: "0"},
		{in: "maybe", wantErr: true}, {in: "", wantErr: true}, {in: "2", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseBool(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseBool(%q) = %v, %v, want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{in: "30", want: 30 * time.Second},
		{in: "25.5", want: 25500 * time.Millisecond},
		{in: "0.001", want: time.Millisecond},
		{in: "-1", want: -time.Second},
		{in: "1e400", wantErr: true},
		{in: "NaN", wantErr: true},
		{in: "inf", wantErr: true},
		{in: "1e10", wantErr: true},
		{in: "5s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseSeconds(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseSeconds(%q) = %v, %v, want %v (error: %v)", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"all", Error{File: "web.ini", Line: 14, Section: "watcher:api", Key: "numprocesses", Msg: `"ten" is not a number`},
			`web.ini:14: [watcher:api] numprocesses: "ten" is not a number`},
		{"no key", Error{File: "web.ini", Line: 3, Section: "watcher:Web", Msg: "clash"}, "web.ini:3: [watcher:Web] clash"},
		{"no line", Error{File: "web.ini", Msg: "unreadable"}, "web.ini: unreadable"},
		{"message only", Error{Msg: "bad"}, "bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestClosest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, want string
	}{
		{"numprocess", "numprocesses"},
		{"gracefull_timeout", "graceful_timeout"},
		{"cdm", ""}, // transposition of a 3-letter key: 2 edits, too far
		{"service_url", ""},
		{"cmd", ""}, // known keys are no typos
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			got, _ := suggest.Closest(tt.key, watcherKeys)
			if got != tt.want {
				t.Errorf("suggest.Closest(%q) = %q, want %q", tt.key, got, tt.want)
			}
		})
	}
}
