// Package sdnotify speaks the service manager's side channel of
// sd_notify(3): a process started by systemd with Type=notify finds the
// path of a datagram socket in NOTIFY_SOCKET and sends it newline-separated
// assignments such as READY=1, RELOADING=1, STOPPING=1, STATUS=... and
// WATCHDOG=1. A path beginning with "@" names a socket in the abstract
// namespace, as systemd passes it to services in containers.
//
// The protocol is small enough to write down here rather than import a
// library for: one datagram per message, sent on a socket dialled for that
// message, so that a service manager that re-executed itself (and bound its
// socket anew) still gets the next one. A send never waits long: a manager
// that does not read its socket must not stall the caller.
//
// Nothing here reads the environment more than once or changes it: the
// caller keeps these variables away from its own children (the arbiter's
// workers never inherit NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID).
package sdnotify

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// sendTimeout bounds one send: the manager's socket queue is full only when
// the manager itself is stuck, and then the message is not worth a stall.
const sendTimeout = time.Second

// Notifier sends messages to one notification socket. Its methods are safe
// for concurrent use (each send is a datagram of its own).
type Notifier struct {
	addr *net.UnixAddr
}

// New returns a Notifier for the socket at path ("@name" for an abstract
// one). It does not connect: the socket is dialled at each Send.
func New(path string) (*Notifier, error) {
	if path == "" {
		return nil, errors.New("sdnotify: empty socket path")
	}
	if !strings.HasPrefix(path, "/") && !strings.HasPrefix(path, "@") {
		// systemd passes only absolute paths and abstract names; anything
		// else is a mistake in a hand-written environment.
		return nil, fmt.Errorf("sdnotify: NOTIFY_SOCKET=%q: want an absolute path or @name", path)
	}
	// Go's net package maps a leading "@" to the abstract namespace's
	// leading NUL byte.
	return &Notifier{addr: &net.UnixAddr{Name: path, Net: "unixgram"}}, nil
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET, or nil (and no error)
// when it is unset: no service manager is listening.
func FromEnv() (*Notifier, error) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil, nil
	}
	return New(path)
}

// Send sends the assignments (such as "READY=1", "STATUS=running") in one
// message. An assignment must not contain a newline, which separates them
// on the wire.
func (n *Notifier) Send(assignments ...string) error {
	for _, a := range assignments {
		if strings.ContainsRune(a, '\n') || !strings.Contains(a, "=") {
			return fmt.Errorf("sdnotify: %q is not a single-line NAME=value", a)
		}
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if err := c.SetWriteDeadline(time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	if _, err := c.Write([]byte(strings.Join(assignments, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Monotonic is the MONOTONIC_USEC= assignment for now, which systemd
// wants beside RELOADING=1 (Type=notify-reload) to order the reload
// against the SIGHUP it sent.
func Monotonic() string {
	var ts unix.Timespec
	// CLOCK_MONOTONIC cannot fail to be read on Linux.
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return "MONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10)
}

// WatchdogInterval reads WATCHDOG_USEC and WATCHDOG_PID: the interval
// within which the manager wants WATCHDOG=1, or 0 when it wants none, or
// when WATCHDOG_PID names another process (the variables were inherited
// from a parent that is the one watched). A malformed value is an error
// naming the variable.
func WatchdogInterval() (time.Duration, error) {
	usec := os.Getenv("WATCHDOG_USEC")
	if usec == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || n == 0 || n > uint64(math.MaxInt64/int64(time.Microsecond)) {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q: want a positive number of microseconds", usec)
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" {
		pid, err := strconv.Atoi(p)
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID=%q: want a process id", p)
		}
		if pid != os.Getpid() {
			return 0, nil
		}
	}
	return time.Duration(n) * time.Microsecond, nil
}
