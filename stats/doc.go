// Package stats samples the arbiter's workers from /proc and publishes
// Circus's stats stream: what circusd-stats sends on stats_endpoint
// (reference/circus-0.19.md §4), and the process info of the stats and
// dstats commands.
//
// # Samples
//
// A [Sampler] reads /proc/PID/stat, statm, status and cmdline (and, for
// children, /proc/PID/task/TID/children) for each process and makes an
// [Info] with Circus's fields: mem_info1 and mem_info2 (RSS and VMS as
// "1.34M"), cpu (% of one core since the previous sample of the same
// process, 1 decimal, 0.0 the first time, as psutil's cpu_percent), mem (%
// of MemTotal, 3 decimals), ctime ("M:SS.cc", user+system time including
// reaped children, as psutil's cpu_times sum), pid, username (of the real
// uid), nice, create_time (psutil's arithmetic: starttime/100 + btime, so
// the float is the same to the last bit), age, cmdline (basename of
// argv[0]), children, and for workers started and wid. A field that cannot
// be read is "N/A"; a process that vanished mid-sample is left out.
//
// A cpu percentage is measured over at least 200 ms: when samples come
// closer together (a stats command just after a tick), the later one is
// measured from the sample before, so commands do not spoil the stream's
// figures. psutil measures from whatever call came last.
//
// Age counts from the arbiter's spawn time for a worker (Circus's
// process.info) and from create_time otherwise (Circus's get_info).
//
// [Info.MarshalJSON] writes Python's json.dumps format, which is Circus's
// wire format: ", " and ": " separators, floats as Python's repr (0.0, not
// 0), non-ASCII escaped, and Circus's key order.
//
// # Topics
//
// A [Publisher] sends, once per interval (1 s), each message as two frames
// to a [Sender]:
//
//	stat.<watcher>.<pid>  an Info without children, started and wid, plus
//	                      "subtopic": pid, "name": null
//	stat.<watcher>        {"pid": [pids], "cpu": mean, "mem": sum, "age": max}
//	stat.circus.<pid>     the arbiter itself, "name": "circusd"
//	stat.circus           its aggregate
//	stat.sockets.<fd>     {"fd": fd, "subtopic": fd, "reads": n, "address": "host:port"}
//	stat.sockets          {"addresses": [...], "reads": total}, only if there are sockets
//
// <watcher> is the name lower-cased with spaces kept, as Circus's list
// command gives it (stat.web srv), unlike event topics. circusd-stats and
// circushttpd are not separate processes here, so stat.circus covers the
// arbiter alone.
//
// # Socket reads
//
// Circus's "reads" counts the 10 ms polls in which a socket was readable,
// and that polling is why circusd-stats burns CPU (circus issue #853).
// Ours is read once per interval and costs a few system calls: for a TCP
// listener, the number of connections waiting in its accept queue at that
// moment (TCP_INFO's tcpi_unacked); for a unix listener or a datagram
// socket, 1 if something is waiting, else 0. A reuseport socket is always 0:
// the arbiter's copy only reserves the address, and each worker listens on
// its own. Like Circus's, it is a rough load signal, not a count of
// requests.
//
// # Concurrency
//
// [Publisher.Run] is one goroutine with a time.Ticker: it starts no other
// and does no work between ticks. A tick asks the [Source] for the workers
// (with a deadline of one interval), samples them and sends; [Sender.Send]
// must not block. A [Sampler] is safe for concurrent use (one mutex guards
// its baselines and user cache), so the stats and dstats commands can
// sample through [Publisher.Sampler] while Run ticks.
//
// # Cost
//
// One tick over 100 sleeping workers costs about 3 ms of CPU here
// (BenchmarkTick: 2.8-4.0 ms), 0.3-0.4% of a core at one tick a second;
// every tenth second, when the uid and argv[0] are read again, about 7 ms.
// Run for 30 s with 100 workers, the whole test process used 0.61% of a
// core. Nearly all of it is the open, read and close of /proc/PID/stat and
// statm; keeping those files open and re-reading them with pread would
// roughly halve it.
package stats
