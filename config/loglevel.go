package config

import (
	"log/slog"
	"strings"
)

// LogLevel returns the slog level for a Circus loglevel name, compared
// without case: debug, info, warning (or warn), error, and critical, which
// slog lacks and which becomes error. ok is false for any other name. The
// [circus] loglevel key and the arbiter's -log-level flag both use it.
func LogLevel(name string) (level slog.Level, ok bool) {
	switch strings.ToLower(name) {
	case "debug":
		return slog.LevelDebug, true
	case "info":
		return slog.LevelInfo, true
	case "warning", "warn":
		return slog.LevelWarn, true
	case "error", "critical":
		return slog.LevelError, true
	}
	return 0, false
}
