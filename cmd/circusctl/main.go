// Command circusctl drives a Ringmaster (or Circus) arbiter from the
// command line, with Circus's circusctl syntax: global options first, then
// the command.
//
//	circusctl [--endpoint E] [--timeout S] [--json] [--prettify] COMMAND [ARGS]
//
// This version has the event and stats commands:
//
//	listen [TOPIC...]   print every event as "topic: json" (a SUB on the
//	                    events endpoint, --endpoint or tcp://127.0.0.1:5556)
//	top                 live cpu, memory and age of every worker (a SUB on
//	                    the stats endpoint, --endpoint or tcp://127.0.0.1:5557)
//
// The control commands (status, incr, restart...) arrive with the control
// plane.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

const (
	defaultSub   = "tcp://127.0.0.1:5556"
	defaultStats = "tcp://127.0.0.1:5557"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// globals are Circus's global options, which come before the command.
type globals struct {
	endpoint string
	timeout  int
	json     bool
	prettify bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("circusctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var g globals
	fs.StringVar(&g.endpoint, "endpoint", "", "connection endpoint (listen: the events endpoint, default "+defaultSub+"; top: the stats endpoint, default "+defaultStats+")")
	fs.IntVar(&g.timeout, "timeout", 5, "connection timeout in seconds")
	fs.BoolVar(&g.json, "json", false, "output to JSON")
	fs.BoolVar(&g.prettify, "prettify", false, "prettify output")
	version := fs.Bool("version", false, "display version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: circusctl [options] command [args]\n\nCommands:\n  listen [TOPIC...]  print events as they happen\n  top                live cpu, memory and age of every worker\n\nOptions:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *version {
		v := "(devel)"
		if bi, ok := debug.ReadBuildInfo(); ok {
			v = bi.Main.Version
		}
		fmt.Fprintf(stdout, "circusctl (Ringmaster) %s\n", v)
		return 0
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	cmd, rest := fs.Arg(0), fs.Args()[1:]
	var err error
	switch cmd {
	case "listen":
		err = listen(ctx, endpointOr(g.endpoint, defaultSub), rest, stdout)
	case "top":
		err = top(ctx, g, rest, stdout, stderr)
	default:
		fmt.Fprintf(stderr, "circusctl: %s: not available yet in Ringmaster's circusctl (the control commands come with the control plane); Circus's own circusctl works against Ringmaster for them once it has landed\n", cmd)
		return 2
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(stderr, "circusctl: %v\n", err)
		return 1
	}
	return 0
}

func endpointOr(e, def string) string {
	if e != "" {
		return e
	}
	return def
}
