package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// termnote proves a graceful stop: the worker handles SIGTERM before it
// says it is ready (READY=1 when it has a NOTIFY_SOCKET) and writes "PID"
// to path; at SIGTERM it writes "PID TERM" and exits 0. A worker killed
// any other way leaves "PID" alone.
func termnote(path string) {
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if os.Getenv("NOTIFY_SOCKET") != "" {
		notify("READY=1\n")
	}
	write(path, fmt.Sprint(os.Getpid()))
	<-term
	write(path, fmt.Sprintf("%d TERM", os.Getpid()))
	os.Exit(0)
}
