// Command benchworker is the worker program of spawnbench: the smallest
// useful Go HTTP worker, started the same way by Ringmaster and by
// spawnbench's bare floor launcher, so that both measure the same thing.
//
// It serves HTTP on the listening socket it inherits as --fd (3 by default:
// Ringmaster passes `--fd $(circus.sockets.web)`, the floor passes the
// listener as ExtraFiles[0]), and once the server runs it reports readiness
// sd_notify style: one datagram "READY=1\nMAINPID=<pid>" to the unixgram
// socket named by $BENCH_NOTIFY (nothing is sent when it is unset). It has
// no signal handling: SIGTERM and SIGKILL end it at once.
//
// spawnbench builds it with CGO_ENABLED=0; it is not meant to be run by hand.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"time"
)

func main() {
	log.SetFlags(0)
	log.SetPrefix(fmt.Sprintf("benchworker[%d]: ", os.Getpid()))
	fd := flag.Int("fd", 3, "serve on this inherited listening `fd`")
	flag.Parse()

	f := os.NewFile(uintptr(*fd), "listener")
	if f == nil {
		log.Fatalf("fd %d is not valid", *fd)
	}
	ln, err := net.FileListener(f)
	f.Close() // FileListener made its own copy
	if err != nil {
		log.Fatalf("fd %d: %v", *fd, err)
	}
	pid := os.Getpid()
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from pid %d\n", pid)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	if path := os.Getenv("BENCH_NOTIFY"); path != "" {
		if err := notify(path, fmt.Sprintf("READY=1\nMAINPID=%d", pid)); err != nil {
			log.Fatal(err)
		}
	}
	log.Fatal(<-errc)
}

// notify sends msg as one datagram to the unixgram socket at path.
func notify(path, msg string) error {
	c, err := net.Dial("unixgram", path)
	if err != nil {
		return fmt.Errorf("notify %s: %w", path, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		return fmt.Errorf("notify %s: %w", path, err)
	}
	return nil
}
