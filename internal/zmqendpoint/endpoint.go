// Package zmqendpoint binds the listening side of a ZeroMQ endpoint,
// "tcp://host:port" or "ipc:///path", with the rules Ringmaster's sockets
// share: a tcp host that is not loopback is refused unless the caller
// allows remote peers, an ipc path left behind by a dead process is
// replaced only if nothing answers on it (a live socket or a file that is
// not a socket is refused), and a new socket file gets a chosen mode. In
// an image started by an in-place upgrade, the listener the image before
// handed over under "zmq " + the endpoint as configured is taken instead
// (see internal/handover): no peer is refused, and an ipc file, live, is
// left in place, to be removed as a bound one's would be.
//
// On top of that, [Serve] is the one server skeleton both ZeroMQ
// endpoints run (control's ROUTER and pubsub/zmqpub's PUB): the accept
// loop, the ZMTP handshake through zmq4's connection layer under a
// deadline, one reader and one writer goroutine per peer, a bounded queue
// per peer, a write deadline, and a Close that waits for all of it. What
// a peer reads and what it queues is the endpoint's own ([Peer]).
package zmqendpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// Options configures [Listen].
type Options struct {
	// Name says what the endpoint is for and starts every error:
	// "control" gives `control endpoint "tcp://…": …`.
	Name string
	// AllowRemote permits a tcp endpoint on a non-loopback address.
	AllowRemote bool
	// Refusal explains why a non-loopback tcp endpoint is refused; it
	// follows `<Name> endpoint "…" is not loopback: `.
	Refusal string
	// Mode is the permission given to an ipc socket file.
	Mode fs.FileMode
	// KeepFile leaves an ipc socket file in place when the listener
	// closes, for the caller to remove with [Endpoint.RemoveFile] once its
	// last connection is gone. Otherwise closing the listener removes it.
	KeepFile bool
}

// Endpoint is a bound endpoint.
type Endpoint struct {
	Listener net.Listener
	// Addr is the endpoint actually bound, such as "tcp://127.0.0.1:40123"
	// (port 0 resolved) or the ipc endpoint as given.
	Addr string
	// Path is the ipc socket file, or "" for tcp.
	Path string
}

// Listen binds endpoint: "tcp://host:port" (port 0 picks one; host "*"
// means every interface) or "ipc:///path".
func Listen(endpoint string, o Options) (*Endpoint, error) {
	switch {
	case strings.HasPrefix(endpoint, "tcp://"):
		ln, err := listenTCP(endpoint, o)
		if err != nil {
			return nil, err
		}
		return &Endpoint{Listener: ln, Addr: "tcp://" + ln.Addr().String()}, nil
	case strings.HasPrefix(endpoint, "ipc://"):
		path := strings.TrimPrefix(endpoint, "ipc://")
		ln, err := listenIPC(endpoint, path, o)
		if err != nil {
			return nil, err
		}
		return &Endpoint{Listener: ln, Addr: endpoint, Path: path}, nil
	default:
		return nil, fmt.Errorf("%s endpoint %q: want tcp://host:port or ipc:///path", o.Name, endpoint)
	}
}

// RemoveFile removes the ipc socket file, if any; one already gone is no
// error.
func (e *Endpoint) RemoveFile() error {
	if e.Path == "" {
		return nil
	}
	if err := os.Remove(e.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// handoverKey names an endpoint's listener across an in-place upgrade: by
// the endpoint as configured, so that the next image, reading the same
// configuration, takes the same listener.
func handoverKey(endpoint string) string { return "zmq " + endpoint }

func listenTCP(endpoint string, o Options) (net.Listener, error) {
	host, port, err := net.SplitHostPort(strings.TrimPrefix(endpoint, "tcp://"))
	if err != nil {
		return nil, fmt.Errorf("%s endpoint %q: %w", o.Name, endpoint, err)
	}
	if host == "*" {
		host = ""
	}
	if !o.AllowRemote && !IsLoopback(host) {
		return nil, fmt.Errorf("%s endpoint %q is not loopback: %s", o.Name, endpoint, o.Refusal)
	}
	ln, err := handover.Listen(handoverKey(endpoint), "tcp", net.JoinHostPort(host, port))
	if err != nil {
		return nil, fmt.Errorf("%s endpoint %q: %w", o.Name, endpoint, err)
	}
	return ln, nil
}

// IsLoopback reports whether host is "localhost" or a loopback IP address.
// The empty host (every interface) is not.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func listenIPC(endpoint, path string, o Options) (net.Listener, error) {
	if path == "" {
		return nil, fmt.Errorf("%s endpoint %q: empty path", o.Name, endpoint)
	}
	// The socket an upgrade hands over is live, and the file is its own.
	if !handover.Inherited(handoverKey(endpoint)) {
		if err := removeStaleSocket(path); err != nil {
			return nil, fmt.Errorf("%s endpoint %q: %w", o.Name, endpoint, err)
		}
	}
	ln, err := handover.Listen(handoverKey(endpoint), "unix", path)
	if err != nil {
		return nil, fmt.Errorf("%s endpoint %q: %w", o.Name, endpoint, err)
	}
	// There is a moment between bind and chmod where the umask decides; the
	// umask is process-wide, so a library cannot narrow it safely.
	if err := os.Chmod(path, o.Mode); err != nil {
		ln.Close() // removes the file: unlink on close is still on
		return nil, fmt.Errorf("%s endpoint %q: %w", o.Name, endpoint, err)
	}
	if o.KeepFile {
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
	}
	return ln, nil
}

// removeStaleSocket removes path if it is a unix socket nobody listens on.
// Anything else at path is left alone and reported.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket; remove it or choose another path", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("probe %s: %w", path, err)
	}
	return os.Remove(path)
}

// acceptLoop accepts connections on ln and hands each to handle until done
// is closed or handle returns false. A failed Accept (out of fds or
// similar) is logged to log as "accept failed" with endpoint addr, and
// retried after a pause that doubles from 5ms up to 1s, rather than
// spinning, as net/http does.
func acceptLoop(ln net.Listener, done <-chan struct{}, log *slog.Logger, addr string, handle func(net.Conn) bool) {
	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			select {
			case <-done:
				return
			default:
			}
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			log.Warn("accept failed", "endpoint", addr, "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-done:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		backoff = 0
		if !handle(nc) {
			return
		}
	}
}
