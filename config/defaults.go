package config

import (
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

// Ringmaster's flapping limit when nothing configures it: Upstart's
// "respawn limit 10 5", retried as Circus's Flapping plugin does.
const (
	defaultFlapAttempts = 10
	defaultFlapWindow   = 5 * time.Second
	defaultFlapRetryIn  = 7 * time.Second
	defaultFlapMaxRetry = 5
)

// Defaults returns a Config holding Circus 0.19's defaults for the [circus]
// section, no watchers, sockets or plugins. It is the one place defaults
// live: [DefaultWatcher] and [DefaultSocket] give those of one section.
func Defaults() *Config {
	return &Config{
		Circus: Circus{
			Endpoint:          "tcp://127.0.0.1:5555",
			PubsubEndpoint:    "tcp://127.0.0.1:5556",
			StatsEndpoint:     "tcp://127.0.0.1:5557",
			MulticastEndpoint: "udp://237.219.251.97:12027",
			CheckDelay:        5 * time.Second,
			Umask:             -1,
			HttpdHost:         "localhost",
			HttpdPort:         8080,
			LogLevel:          "info",
			LogOutput:         "-",
			LogFormat:         "text",
			Options:           map[string]string{},
		},
		Env: map[string]string{},
		pos: map[string]Position{},
	}
}

// DefaultWatcher returns a watcher named name with Circus's defaults (and
// Ringmaster's for the options Circus does not have). Cmd is left empty: it
// has no default.
func DefaultWatcher(name string) *Watcher {
	return &Watcher{
		Name:            name,
		UID:             -1,
		GID:             -1,
		Env:             map[string]string{},
		NumProcesses:    1,
		Autostart:       true,
		Respawn:         true,
		MaxRetry:        5,
		RestartDelay:    100 * time.Millisecond,
		GracefulTimeout: 30 * time.Second,
		StopSignal:      syscall.SIGTERM,
		MaxAgeVariance:  30 * time.Second,
		Health:          defaultHealth(),
		Ready:           defaultReady(),
		Limits:          defaultLimits(),
		Autoscale:       defaultAutoscale(),
		CloseChildStdin: true,
		Umask:           -1,
		FlapAttempts:    defaultFlapAttempts,
		FlapWindow:      defaultFlapWindow,
		FlapRetryIn:     defaultFlapRetryIn,
		FlapMaxRetry:    defaultFlapMaxRetry,
		StdoutStream:    map[string]string{},
		StderrStream:    map[string]string{},
		Hooks:           map[string]Hook{},
		Options:         map[string]string{},
	}
}

// DefaultSocket returns a socket named name with Circus's defaults, except
// umask: -1 stands for sockets' own safe default instead of Circus's 8.
func DefaultSocket(name string) sockets.Spec {
	return sockets.Spec{
		Name:    name,
		Host:    "localhost",
		Port:    8080,
		Family:  "AF_INET",
		Type:    "SOCK_STREAM",
		Backlog: 2048,
		Umask:   -1,
	}
}
