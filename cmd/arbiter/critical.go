package main

import (
	"errors"

	"github.com/ringmaster-dev/ringmaster/arbiter"
)

// Exit codes: 0 a clean stop; 1 an error (the configuration, a bind, at
// run time); 2 usage; 3 a critical watcher gave up, so that a container
// engine or systemd (Restart=on-failure, RestartPreventExitStatus) can
// tell the service's own failure from the arbiter's.
const exitCritical = 3

// exitCode is the exit code for the error serve returned.
func exitCode(err error) int {
	if _, ok := errors.AsType[*arbiter.CriticalError](err); ok {
		return exitCritical
	}
	return 1
}
