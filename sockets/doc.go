// Package sockets binds the sockets of a Circus configuration and lays them
// out for the workers that inherit them.
//
// The arbiter binds every [socket:NAME] once, with [Bind] or [BindAll],
// before the first worker starts, and keeps it until it exits; workers
// never bind. Reloads reuse a [Socket] whose [Spec] did not change. Bind
// errors name the socket and the address and wrap the system error, so a
// caller can add the config file and line and still test
// errors.Is(err, unix.EADDRINUSE).
//
// # What a socket is
//
// TCP and UDP over IPv4 (family AF_INET, the default) and IPv6 (AF_INET6);
// the host "localhost" means 127.0.0.1 or ::1 according to the family, and
// other names are resolved, the first address of the family winning. Stream
// sockets always get SO_REUSEADDR, as in Circus. A Path makes a unix socket.
// Its mode comes from the spec's umask (octal; Circus's decimal reading is a
// bug not copied), applied without changing the process-wide umask: the
// socket is bound in a private temporary directory beside the path,
// chmod-ed, made to listen and renamed into place. An existing path is an
// error unless Replace is set, and even then only a socket is replaced,
// never a regular file. [Socket.Close] unlinks the path if it still names
// the socket Bind made.
//
// Every socket is close-on-exec; os/exec clears the flag in the child only,
// for the files passed as ExtraFiles. Sockets are non-blocking unless the
// spec says Blocking. The flag lives on the open file description, which
// the arbiter and all its children share, so it is set once, at creation,
// and never changed later (this is why the raw fd is never taken with
// os.File.Fd, which would make it blocking).
//
// # Handing sockets to a child: three dialects
//
// [Prepare] returns a [Handoff] for one spawn. Its Files go into
// exec.Cmd.ExtraFiles in the order the watcher lists its sockets, so socket
// i is fd 3+i in the child; nothing else above fd 2 is inherited. A child
// can learn where its sockets are in three ways, all describing that same
// layout:
//
//   - Circus's substitution: $(circus.sockets.NAME) in cmd or args expands
//     to the socket's fd number in the child, Handoff.FDs[NAME]. (Circus
//     passes its own fd number; ours is 3+i, which the child cannot tell
//     apart.)
//   - systemd's socket activation: Handoff.Env carries LISTEN_FDS=N and
//     LISTEN_FDNAMES=name1:name2..., so sd_listen_fds and go-systemd's
//     activation package work. LISTEN_PID must equal the child's own pid,
//     which only code running in the child can know: the arbiter's spawner
//     sets it in the child before exec; this package does not.
//   - Plain order: a program that simply expects its listener on fd 3 (and
//     the next ones on 4, 5...) gets exactly that.
//
// Which of Env a child gets is the caller's decision: the arbiter leaves
// it out for a watcher whose command names its sockets, since a program
// that adopts both descriptions (gunicorn's --bind fd://3 and LISTEN_FDS)
// takes the same fd twice.
//
// # Reuseport
//
// With ReusePort (SO_REUSEPORT), each worker gets a private listener rather
// than a share of one accept queue, and the kernel spreads incoming
// connections over the workers' listeners. Bind then makes a socket with
// SO_REUSEPORT that is bound but does not listen: it reserves the address
// (so no other program can take the port, and a port of 0 is resolved
// once, for every worker) without receiving connections itself. It leaves
// out SO_REUSEADDR, because Linux lets any SO_REUSEADDR socket bind beside
// SO_REUSEADDR sockets that do not listen, which would void the
// reservation. For each spawn, Prepare creates a fresh socket with
// SO_REUSEADDR and SO_REUSEPORT (and the spec's other options), bound to
// that real address and listening; the child inherits it, and
// [Handoff.Close] closes the parent's copy right after the fork.
// When a worker exits, its listener goes with it, and connections still in
// its accept queue are reset: that is the kernel's reuseport behaviour.
// A UDP socket with ReusePort is shared as it is (a second bound UDP socket
// would take a share of the datagrams and never read them); the option only
// lets other programs bind the same port.
//
// # Accept queues
//
// The arbiter holds every listening socket, so it sees what no worker
// can: how many connections wait in the kernel's accept queue, for an
// autoscaler to act on. A [QueueReader] reads it for many sockets at
// once, with one sock_diag dump of the listening sockets per family (TCP
// over IPv4 and IPv6, unix) whatever their number, matched by inode: the
// queue's length and limit are what ss -l shows as Recv-Q and Send-Q.
// Where the kernel has no inet_diag, TCP listeners are read one by one
// with getsockopt(TCP_INFO) (tcpi_unacked, tcpi_sacked). [Spec.CheckQueue]
// says whether a socket has a queue to read: a datagram socket has none,
// and with ReusePort each worker has its own, which the arbiter does not
// hold.
//
// # Across an in-place upgrade
//
// When the arbiter execs its new binary in place, its sockets are never
// closed: [Socket.Handover] clears the close-on-exec flag of each fd and
// returns a [State] (the spec, the fd, the address the kernel bound, the
// unix file Bind created) for the hand-over document, and the new image
// rebuilds each Socket with [Adopt], which checks that the fd is the
// socket the spec describes. Connections waiting in the accept queue and
// datagrams in the receive queue stay there, and the unix file, which the
// old image does not remove (an exec runs no Close), is removed by the
// new one's Close as Bind's would be. [Socket.HandoverBack] undoes
// Handover when the exec fails.
package sockets
