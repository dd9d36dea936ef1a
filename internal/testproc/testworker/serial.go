package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// serial serves one connection at a time on the listening socket at fd
// (args: FD DURATION): it reads a line, works for DURATION, answers
// "pid N\n" and closes, then accepts the next; meanwhile connections wait
// in the accept queue, as with a pre-fork server's worker. SIGTERM lets
// the connection in hand finish, then it exits 0.
func serial(args []string) {
	if len(args) != 2 {
		fail(fmt.Errorf("serial: want FD DURATION, got %q", args))
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil {
		fail(fmt.Errorf("serial: fd %q: %w", args[0], err))
	}
	work, err := time.ParseDuration(args[1])
	if err != nil {
		fail(fmt.Errorf("serial: %w", err))
	}
	l, err := net.FileListener(os.NewFile(uintptr(fd), "listener"))
	if err != nil {
		fail(err)
	}
	var stopping atomic.Bool
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM)
		<-c
		stopping.Store(true)
		l.Close() // ends an Accept; a connection in hand is finished first
	}()
	pid := os.Getpid()
	for !stopping.Load() {
		c, err := l.Accept()
		if err != nil {
			if stopping.Load() {
				break
			}
			fail(err)
		}
		_ = c.SetDeadline(time.Now().Add(10*time.Second + work))
		if _, err := bufio.NewReader(c).ReadString('\n'); err == nil {
			time.Sleep(work)
			fmt.Fprintf(c, "pid %d\n", pid)
		}
		c.Close()
	}
	os.Exit(0)
}
