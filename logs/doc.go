// Package logs carries workers' stdout and stderr to where the watcher's
// configuration sends them: Circus's stream classes (FileStream with size
// rotation, TimedRotatingFileStream, WatchedFileStream for an external
// logrotate, StdoutStream, FancyStdoutStream, QueueStream) or, with no
// stream configured, the arbiter's own output with each line prefixed by
// the watcher's name and the worker's pid, as systemd's journal shows it.
//
// Each worker's stream is a pipe read by its own goroutine, so a slow disk
// slows only the workers that write to it (they block on a full pipe, as
// they would on a slow terminal), never the arbiter's loops. Output is cut
// into whole lines before it is written: a line split across reads is
// written once, with one prefix, lines of different workers never
// interleave, and rotation happens only between lines. A line longer than
// MaxLine is written in pieces of MaxLine bytes, each ended as a line.
//
// Each watcher also keeps the recent output of each of its workers (and of
// the last few that exited) in memory, so that `circusctl tail`, `circusctl
// logs` and the console can show it without a log file; a Journal keeps
// the arbiter's own recent log lines the same way. Every line read is
// numbered per watcher, so that a reader that follows (Output.Follow)
// asks for what came after its last line. Nothing is kept for a reader:
// one that reads slower than the workers write is never waited for, and
// is told how many lines it missed.
//
// An upgrade in place hands the pipes to the arbiter's next image:
// Output.Detach stops every reader between two reads (a read deadline in
// the past wakes it in the poller without closing its pipe) and returns
// each pipe's fd, close-on-exec cleared, with the line its reader had
// begun; the next image's Output.Adopt reads on from there, and what the
// workers wrote meanwhile waits in the pipes. Output.RingState and
// RestoreRing carry the kept output and its numbering across. The
// destinations are not handed over: nothing waits in them (every batch
// read is written before the next read), and the next image opens them
// again from its configuration.
package logs
