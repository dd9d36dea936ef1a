// Command httpworker is a small HTTP worker for Ringmaster (and Circus) that
// serves on a listening socket it inherits instead of binding one itself.
//
// It finds its socket in one of two ways:
//
//   - --fd N, Circus's way: the config passes the fd with
//     `--fd $(circus.sockets.NAME)`.
//   - systemd's socket activation, when --fd is absent: LISTEN_FDS sockets
//     start at fd 3, LISTEN_PID must be our own pid (otherwise the variables
//     were meant for our parent and leaked to us), and --name picks the
//     socket whose LISTEN_FDNAMES entry matches (default: the first).
//
// Endpoints:
//
//	GET /            "hello from pid PID\n", so callers can tell workers apart
//	GET /slow?ms=N   a first line at once, the last after N milliseconds (to watch
//	                 a graceful stop drain an in-flight request)
//	GET /healthz     200 "ok\n"
//
// On SIGTERM or SIGINT it stops accepting, lets in-flight requests finish
// (at most --drain, which should be below the watcher's graceful_timeout so
// the arbiter never has to SIGKILL it) and exits 0.
//
// Once it serves, it sends "READY=1" to $NOTIFY_SOCKET when that is set
// (systemd's sd_notify), so a supervisor can tell when it is ready.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// maxSlow bounds /slow so that a mistyped request cannot pin a worker.
const maxSlow = 5 * time.Minute

func main() {
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("httpworker[%d]: ", os.Getpid()))

	fd := flag.Int("fd", -1, "serve on this inherited listening `fd` (Circus: --fd $(circus.sockets.NAME)); without it, use LISTEN_FDS")
	name := flag.String("name", "", "with LISTEN_FDS, the socket `name` to pick from LISTEN_FDNAMES (default: the first socket)")
	drain := flag.Duration("drain", 10*time.Second, "on SIGTERM, wait at most this long for in-flight requests")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}

	ln, err := listener(*fd, *name)
	if err != nil {
		log.Fatal(err)
	}
	if err := serve(ln, *drain); err != nil {
		log.Fatal(err)
	}
}

// listener turns the inherited fd into a net.Listener.
func listener(fd int, name string) (net.Listener, error) {
	if fd < 0 {
		var err error
		if fd, err = listenFD(name); err != nil {
			return nil, err
		}
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("fd%d", fd))
	if f == nil {
		return nil, fmt.Errorf("fd %d is not valid", fd)
	}
	// FileListener dups the fd; our copy is no longer needed. Closing it
	// closes only this process's reference, never the arbiter's socket.
	defer f.Close()
	ln, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("fd %d: %w (is it a listening stream socket?)", fd, err)
	}
	return ln, nil
}

// listenFD reads systemd's socket-activation variables (sd_listen_fds(3)).
func listenFD(name string) (int, error) {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil {
		return -1, errors.New("no --fd given and LISTEN_PID is not set: start me with --fd N or with LISTEN_FDS")
	}
	if pid != os.Getpid() {
		return -1, fmt.Errorf("LISTEN_PID is %d, not my pid %d: the sockets were meant for another process", pid, os.Getpid())
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n < 1 {
		return -1, fmt.Errorf("LISTEN_FDS = %q: want a number of sockets >= 1", os.Getenv("LISTEN_FDS"))
	}
	if name == "" {
		return 3, nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	for i, nm := range names {
		if i < n && nm == name {
			return 3 + i, nil
		}
	}
	return -1, fmt.Errorf("no socket named %q in LISTEN_FDNAMES %q", name, os.Getenv("LISTEN_FDNAMES"))
}

func serve(ln net.Listener, drain time.Duration) error {
	pid := os.Getpid()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from pid %d\n", pid)
	})
	mux.HandleFunc("GET /slow", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 {
			http.Error(w, "ms: want a number of milliseconds >= 0", http.StatusBadRequest)
			return
		}
		d := min(time.Duration(ms)*time.Millisecond, maxSlow)
		// The first line goes out at once, so a client knows the request is
		// in the handler (not still queued on the socket) before it stops
		// the worker.
		fmt.Fprintf(w, "sleeping %v in pid %d\n", d, pid)
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		// A plain sleep, not the request's context: a graceful stop must
		// let this request finish, which is the point of /slow.
		time.Sleep(d)
		fmt.Fprintf(w, "slept %v in pid %d\n", d, pid)
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	// fresh counts accepted connections whose first request has not been
	// read yet: net/http's Shutdown drops those without an answer (the
	// client sees EOF), so the drain below waits for them first.
	var (
		fresh    atomic.Int64
		newConns sync.Map // net.Conn -> struct{}, while in StateNew
	)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(c net.Conn, st http.ConnState) {
			if st == http.StateNew {
				newConns.Store(c, struct{}{})
				fresh.Add(1)
			} else if _, was := newConns.LoadAndDelete(c); was {
				fresh.Add(-1) // read its request, or closed without one
			}
		}}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Printf("serving on %s", ln.Addr())
	if err := sdNotify(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid())); err != nil {
		log.Printf("sd_notify: %v", err)
	}

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal now kills us the default way
	log.Printf("stopping: draining in-flight requests (at most %v)", drain)
	sctx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	// Stop accepting first: the socket is shared, so connections not yet
	// accepted wait in its backlog for the other workers. Then let every
	// connection already accepted get its request read (they are the ones
	// Shutdown would drop), and only then shut down.
	ln.Close()
	<-errc
	for deadline := time.Now().Add(time.Second); fresh.Load() > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("drain: %w", err)
	}
	log.Printf("stopped")
	return nil
}

// sdNotify tells a supervisor that listens on $NOTIFY_SOCKET (systemd's
// Type=notify protocol) that the worker serves, so that one which waits
// for readiness can count it; without the variable it does nothing.
func sdNotify(msg string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' {
		path = "\x00" + path[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(msg))
	return err
}
