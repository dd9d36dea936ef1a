package logs

import "time"

// sink is where one output stream of a watcher's workers goes: a file,
// rotated or not, or the arbiter's own output. Its caller serializes every
// call, so a sink needs no lock of its own.
type sink interface {
	// write appends lines from worker pid, read at t: one or more whole
	// lines, each ending in '\n'. A sink that prefixes lines does so on
	// each of them; one that rotates does so only between two lines, so
	// that no line is ever split across files.
	write(lines []byte, pid int, t time.Time) error
	// reopen closes the file and opens it again at its path, for an
	// external logrotate that moved it away (SIGUSR1).
	reopen() error
	// close closes the file. No call follows.
	close() error
	// abort is the one call made beside another: it makes a write that
	// is stuck (a FIFO nobody reads) fail, so that shutdown can finish.
	abort()
}
