package config

import "strings"

// ListenFDs is the listen_fds key (Ringmaster's; Circus has none): whether
// a worker that inherits sockets is also told of them in systemd's
// dialect, LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (sd_listen_fds(3)),
// besides Circus's $(circus.sockets.NAME). See [Watcher.SystemdDialect].
type ListenFDs string

// The listen_fds values.
const (
	// ListenFDsAuto, the key unset or "auto": systemd's dialect only for a
	// watcher whose command names no socket.
	ListenFDsAuto ListenFDs = ""
	// ListenFDsOn (true): always, also beside $(circus.sockets.NAME).
	ListenFDsOn ListenFDs = "true"
	// ListenFDsOff (false): never; the sockets are still fds 3.. in order.
	ListenFDsOff ListenFDs = "false"
)

// SystemdDialect reports whether a worker of w that inherits sockets gets
// LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, as listen_fds says or, when
// it is unset, if cmd, args and shell_args name no $(circus.sockets.NAME).
//
// The two dialects must not meet by default: a program that adopts both
// takes the same fd twice. gunicorn 20.1 given --bind fd://3 and
// LISTEN_FDS=1 wraps fd 3 as a listener (closing the original) and then
// fails with EBADF dup'ing it again; uWSGI 2.0 attaches it twice and logs
// epoll_ctl errors (issue 17). Circus sets no LISTEN_FDS at all, so a
// command written for Circus gets exactly what Circus gives it, and one
// that names no socket (use_sockets = true) can only mean systemd's.
func (w *Watcher) SystemdDialect() bool {
	switch w.ListenFDs {
	case ListenFDsOn:
		return true
	case ListenFDsOff:
		return false
	}
	return len(w.SocketRefs()) == 0
}

// readListenFDs reads listen_fds: a boolean or auto.
func (f *fields) readListenFDs(w *Watcher) {
	const key = "listen_fds"
	v, ok := f.get(key)
	if !ok {
		return
	}
	if strings.EqualFold(strings.TrimSpace(v), "auto") {
		w.ListenFDs = ListenFDsAuto
		return
	}
	b, err := parseBool(v)
	if err != nil {
		f.errorf(key, "%q: want true (LISTEN_FDS always), false (never) or auto (only when cmd and args name no $(circus.sockets.NAME))", v)
		return
	}
	w.ListenFDs = ListenFDsOff
	if b {
		w.ListenFDs = ListenFDsOn
	}
	if b && !w.UseSockets && w.StdinSocket == "" && len(w.SocketRefs()) == 0 {
		f.warnf(key, "true, but the watcher inherits no socket: name one with $(circus.sockets.NAME) or set use_sockets = true")
	}
}
