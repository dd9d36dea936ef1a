package stats

import (
	"context"
	"syscall"
	"time"
)

// Source is what the stats are taken from: the arbiter's watchers with
// their workers, and its sockets. [FromArbiter] adapts an
// *arbiter.Arbiter. Its methods may be called from several goroutines at
// once.
type Source interface {
	// Watchers lists the watchers and their current workers. It may
	// block until ctx is done.
	Watchers(ctx context.Context) ([]Watcher, error)
	// Sockets lists the arbiter's sockets.
	Sockets() []Socket
}

// Watcher is one watcher as a [Source] reports it.
type Watcher struct {
	Name  string // as configured; topics use it lower-cased
	Procs []Process
}

// Process is one worker as a [Source] reports it.
type Process struct {
	Pid     int
	Wid     int
	Started time.Time // when the arbiter spawned it; zero for a non-worker
}

// Socket is one of the arbiter's sockets as a [Source] reports it.
type Socket struct {
	Name    string
	FD      int    // the arbiter's fd number, Circus's "fd" and the topic's subtopic
	Address string // "host:port" or a unix path
	// Conn reaches the socket for its "reads" count (see the package
	// documentation); nil counts 0.
	Conn syscall.RawConn
}

// Snapshot is one pass of [Sampler.Collect].
type Snapshot struct {
	Time     time.Time
	Watchers []WatcherStats // in the Source's order
	// Arbiter is this process, Circus's "circusd"; its Pid is 0 if it
	// could not be sampled.
	Arbiter Info
	Sockets []SocketStats
}

// WatcherStats are the samples of one watcher's workers, in the Source's
// order, without the workers that exited before they were sampled.
type WatcherStats struct {
	Name  string
	Procs []Info
}

// SocketStats is the sample of one socket.
type SocketStats struct {
	Name    string
	FD      int
	Address string
	Reads   int
}
