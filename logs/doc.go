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
package logs
