package arbiter

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Readiness. A new worker is ready at once (ready = spawn, Circus's way), or
// warmup_delay after it started, or when it says so over sd_notify, or
// when its first health check passes. Until then it counts toward
// numprocesses (it is not spawned twice) but not toward the capacity a
// retiring worker waits for: a reload, a restart, a max_age or limit
// recycling stops an old worker only once enough new ones are ready, an
// incr answers only when its workers are, and a start only when all are.
// A worker that is not ready within ready_timeout fails as a spawn that
// failed; during a reload, the first such failure abandons the reload and
// the old workers keep serving.

// notifyMsg is one datagram a worker sent to its NOTIFY_SOCKET.
type notifyMsg struct {
	pid      int // the worker's pid (the sender may be one of its group)
	ready    bool
	watchdog bool // WATCHDOG=1: fed
	trigger  bool // WATCHDOG=trigger: the worker asks to be replaced
	status   string
	extend   time.Duration // EXTEND_TIMEOUT_USEC
}

// openNotify creates a worker's notification socket: a datagram socket in
// the abstract namespace, so that it needs no file to clean up and reaches
// workers in a chroot or under another uid, with a random name, since
// anyone on the host may send to an abstract address. Credentials are
// passed with each datagram, and only the worker's own process group is
// listened to.
func openNotify() (*net.UnixConn, string, error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	name := "@ringmaster/" + strconv.Itoa(os.Getpid()) + "/" + hex.EncodeToString(b[:])
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return nil, "", fmt.Errorf("notify socket: %w", err)
	}
	rc, err := c.SyscallConn()
	if err == nil {
		cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
		})
		err = errors.Join(err, cerr)
	}
	if err != nil {
		c.Close()
		return nil, "", fmt.Errorf("notify socket: SO_PASSCRED: %w", err)
	}
	return c, name, nil
}

// notifyEnv returns cfg with NOTIFY_SOCKET (and WATCHDOG_USEC) in the
// worker's environment, sd_notify's contract: the worker's own, set as
// [env] is, so they win over [env] entries of those names; the arbiter's
// own never reach a worker (isServiceVar).
func notifyEnv(cfg *config.Watcher, addr string) *config.Watcher {
	c := *cfg
	c.Env = maps.Clone(cfg.Env)
	c.Env["NOTIFY_SOCKET"] = addr
	if cfg.Ready.Watchdog > 0 {
		c.Env["WATCHDOG_USEC"] = strconv.FormatInt(cfg.Ready.Watchdog.Microseconds(), 10)
	}
	return &c
}

// notifier is a worker's notification socket and the end of its reader.
type notifier struct {
	conn *net.UnixConn
	stop chan struct{}
}

// readNotify reads the worker pid's notifications until n is ended, and
// hands each to the loop.
func (w *Watcher) readNotify(n *notifier, pid int) {
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	for {
		size, oobn, _, _, err := n.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			return // closed by endNotify
		}
		if !fromWorker(oob[:oobn], pid) {
			w.log.Warn("notify: datagram from outside the worker ignored", "pid", pid)
			continue
		}
		m := parseNotify(string(buf[:size]))
		m.pid = pid
		select {
		case w.notifyc <- m:
		case <-n.stop:
			return
		}
	}
}

// fromWorker reports whether the credentials in oob name the worker pid or
// a process of its group (a wrapper's child may notify, as systemd's
// NotifyAccess=all allows, but nothing outside the worker).
func fromWorker(oob []byte, pid int) bool {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return false
	}
	for _, m := range msgs {
		cred, err := unix.ParseUnixCredentials(&m)
		if err != nil {
			continue
		}
		if int(cred.Pid) == pid {
			return true
		}
		if g, err := unix.Getpgid(int(cred.Pid)); err == nil && g == pid {
			return true
		}
	}
	return false
}

// parseNotify reads the newline-separated assignments of sd_notify(3);
// those the arbiter has no use for (MAINPID, ERRNO...) are ignored.
func parseNotify(s string) notifyMsg {
	var m notifyMsg
	for line := range strings.SplitSeq(s, "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		switch k {
		case "READY":
			m.ready = v == "1"
		case "WATCHDOG":
			m.watchdog = v == "1"
			m.trigger = v == "trigger"
		case "STATUS":
			m.status = v
		case "EXTEND_TIMEOUT_USEC":
			if us, err := strconv.ParseInt(v, 10, 64); err == nil && us > 0 {
				m.extend = time.Duration(us) * time.Microsecond
			}
		}
	}
	return m
}

// startNotify starts reading p's notifications on conn.
func (w *Watcher) startNotify(p *worker, conn *net.UnixConn) {
	n := &notifier{conn: conn, stop: make(chan struct{})}
	p.notify = n
	pid := p.Pid
	w.checks.Go(func() { w.readNotify(n, pid) })
}

// endNotify ends p's notification reader: closing the socket ends a read,
// closing stop a hand-over the loop will no longer take.
func (w *Watcher) endNotify(p *worker) {
	if p.notify != nil {
		p.notify.conn.Close()
		close(p.notify.stop)
		p.notify = nil
	}
}

// handleNotify acts on a worker's notification.
func (w *Watcher) handleNotify(m notifyMsg) {
	p := w.procs[m.pid]
	if p == nil || p.stopping {
		return
	}
	now := time.Now()
	if m.status != "" {
		p.status = m.status
		w.log.Debug("notify: status", "pid", p.Pid, "status", m.status)
	}
	if m.extend > 0 && !p.ready.Load() {
		p.readyBy = now.Add(m.extend)
	}
	if m.ready && !p.ready.Load() {
		w.markReady(p)
	}
	if m.watchdog && p.ready.Load() && w.cfg.Ready.Watchdog > 0 {
		p.watchdogAt = now.Add(w.cfg.Ready.Watchdog)
	}
	if m.trigger && !p.retiring {
		w.replaceUnhealthy(p, "watchdog: the worker sent WATCHDOG=trigger")
	}
	w.progress()
}

// beginReadiness sets a new worker's readiness as its watcher's ready key
// says.
func (w *Watcher) beginReadiness(p *worker, now time.Time) {
	r := w.cfg.Ready
	switch r.Mode {
	case config.ReadyWarmup:
		p.readyAt = now.Add(w.cfg.WarmupDelay)
	case config.ReadyNotify, config.ReadyHealth:
		p.readyBy = now.Add(r.Timeout)
	default:
		p.ready.Store(true)
	}
}

// markReady records that p is ready and lets whatever waited for it go on.
func (w *Watcher) markReady(p *worker) {
	p.ready.Store(true)
	p.readyAt, p.readyBy = time.Time{}, time.Time{}
	// Spawning has worked only once the worker is up.
	w.spawnFails = 0
	if w.cfg.Ready.Watchdog > 0 && p.notify != nil {
		p.watchdogAt = time.Now().Add(w.cfg.Ready.Watchdog)
	}
	w.log.Info("ready", "pid", p.Pid, "wid", p.Wid, "after", time.Since(p.Started).Round(time.Millisecond))
	w.emit(pubsub.Event{Kind: pubsub.Ready, Pid: p.Pid, Wid: p.Wid})
	w.reconcile()
}

// notReady fails p, which did not become ready in time (or died before).
// During a reload the reload is abandoned at once: the old version is
// serving and the new one is broken. Otherwise p counts as a failed spawn:
// the slot is retried with a growing pause, and after max_retry failures in
// a row the watcher stops.
func (w *Watcher) notReady(p *worker, err error) {
	w.log.Error("not ready", "pid", p.Pid, "wid", p.Wid, "err", err)
	if !p.stopping {
		p.cause = ReasonUnhealthy
		w.stopProc(p)
	}
	if w.reload != nil && !slices.Contains(w.reload.old, p.Pid) && w.abortReload(err) {
		return
	}
	w.spawnFailed(p.Wid, err)
}

// readyLive counts the workers that are ready and not on their way out:
// the capacity that lets a retiring worker go.
func (w *Watcher) readyLive() int {
	n := 0
	for _, p := range w.procs {
		if p.ready.Load() && !p.stopping && !p.retiring {
			n++
		}
	}
	return n
}

// allReady reports whether every worker not on its way out is ready.
func (w *Watcher) allReady() bool {
	for _, p := range w.procs {
		if !p.ready.Load() && !p.stopping && !p.retiring {
			return false
		}
	}
	return true
}

// handOver stops the retiring workers (reload, restart, max_age, limits)
// once enough new ones are ready to take their place. Without respawn no
// replacement comes, so they go at once, as before readiness existed.
func (w *Watcher) handOver() {
	if w.readyLive() < w.target && (w.cfg.Respawn || w.reload != nil) {
		return
	}
	var going []*worker
	for _, p := range w.procs {
		if p.retiring && !p.stopping {
			going = append(going, p)
		}
	}
	// Oldest first, as the reload listed them: map order would make the
	// order of the stop signals, and of the hooks run for them, random.
	slices.SortFunc(going, func(a, b *worker) int {
		return cmp.Or(a.Started.Compare(b.Started), cmp.Compare(a.Pid, b.Pid))
	})
	for _, p := range going {
		w.stopProc(p)
	}
}

// readinessDeadlines handles the readiness deadlines that have passed: a
// warmup that ended, a ready_timeout, a watchdog that was not fed.
func (w *Watcher) readinessDeadlines(now time.Time) {
	for _, p := range w.procs {
		switch {
		case p.stopping:
		case !p.ready.Load() && !p.readyAt.IsZero() && !now.Before(p.readyAt):
			w.markReady(p)
		case !p.ready.Load() && !p.readyBy.IsZero() && !now.Before(p.readyBy):
			w.notReady(p, fmt.Errorf("pid %d was not ready within %s (ready = %s)", p.Pid, w.cfg.Ready.Timeout, w.cfg.Ready.Mode))
		case p.ready.Load() && !p.retiring && w.watchdogDue(p) && !now.Before(p.watchdogAt):
			w.replaceUnhealthy(p, fmt.Sprintf("watchdog: no WATCHDOG=1 within watchdog_sec %s", w.cfg.Ready.Watchdog))
		}
	}
}

// watchdogDue reports whether p has a watchdog deadline: watchdog_sec may
// have been turned off since it was armed.
func (w *Watcher) watchdogDue(p *worker) bool {
	return w.cfg.Ready.Watchdog > 0 && !p.watchdogAt.IsZero()
}

// readinessNext is the earliest readiness deadline of p, or zero.
func (w *Watcher) readinessNext(p *worker) time.Time {
	switch {
	case p.stopping:
		return time.Time{}
	case !p.ready.Load() && !p.readyAt.IsZero():
		return p.readyAt
	case !p.ready.Load():
		return p.readyBy
	case !p.retiring && w.watchdogDue(p):
		return p.watchdogAt
	}
	return time.Time{}
}

// notifyLaunch prepares a spawn of w for ready = notify: a socket, and the
// config with its address in the environment. conn is nil when the watcher
// does not use notify.
func (w *Watcher) notifyLaunch() (cfg *config.Watcher, conn *net.UnixConn, err error) {
	if w.cfg.Ready.Mode != config.ReadyNotify {
		return w.cfg, nil, nil
	}
	conn, addr, err := openNotify()
	if err != nil {
		return nil, nil, err
	}
	return notifyEnv(w.cfg, addr), conn, nil
}
