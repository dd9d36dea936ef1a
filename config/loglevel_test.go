package config

import (
	"log/slog"
	"testing"
)

func TestLogLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		want   slog.Level
		wantOK bool
	}{
		{"debug", slog.LevelDebug, true},
		{"INFO", slog.LevelInfo, true},
		{"warning", slog.LevelWarn, true},
		{"warn", slog.LevelWarn, true},
		{"error", slog.LevelError, true},
		{"Critical", slog.LevelError, true},
		{"", 0, false},
		{"verbose", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := LogLevel(tc.name)
			if got != tc.want || ok != tc.wantOK {
				t.Errorf("LogLevel(%q) = %v, %v, want %v, %v", tc.name, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}
