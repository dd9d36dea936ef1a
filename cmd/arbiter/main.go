// Command arbiter runs a Circus configuration in the foreground: it binds
// the configured sockets, starts every watcher's workers and keeps them
// alive until it receives SIGINT, SIGTERM or SIGQUIT. SIGHUP re-reads the
// configuration; a file with errors is reported and the running
// configuration kept. SIGUSR1 opens the workers' log files again, after an
// external logrotate moved them.
//
// Usage:
//
//	arbiter [flags] CONFIG
//
// A value comes from the flag, else from the file's [circus] section, else
// from the default.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/stats"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

func run(args []string, stderr io.Writer) int {
	// Whatever fds our own parent leaked to us must not leak on into every
	// worker.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)

	fs := flag.NewFlagSet("arbiter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	validate := fs.Bool("validate", false, "check `CONFIG`, list every problem and exit 0 (valid) or 1")
	logLevel := fs.String("log-level", "", "debug, info, warning, error or critical (default: [circus] loglevel, else info)")
	logOutput := fs.String("log-output", "", "- or stdout, stderr, or a file to append to (default: [circus] logoutput, else -)")
	pidfile := fs.String("pidfile", "", "write the arbiter's pid to this file (default: [circus] pidfile)")
	version := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: arbiter [flags] CONFIG\n\nRuns the watchers of a Circus configuration file in the foreground.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintf(stderr, "arbiter (Ringmaster) %s\n", buildVersion())
		return 0
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)

	cfg, err := config.Load(path)
	for _, w := range cfgWarnings(cfg) {
		fmt.Fprintf(stderr, "arbiter: warning: %v\n", w)
	}
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	if *validate {
		fmt.Fprintf(stderr, "%s: ok: %d watchers, %d sockets\n", path, len(cfg.Watchers), len(cfg.Sockets))
		return 0
	}

	level := firstOf(*logLevel, cfg.Circus.LogLevel, "info")
	lv, ok := config.LogLevel(level)
	if !ok {
		printErr(stderr, fmt.Errorf("log level %q: want debug, info, warning, error or critical", level))
		return 2
	}
	out, closeLog, err := openLog(firstOf(*logOutput, cfg.Circus.LogOutput, "-"))
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	defer closeLog()
	log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: lv}))

	if cfg.Circus.Umask >= 0 {
		syscall.Umask(cfg.Circus.Umask)
	}
	pf := firstOf(*pidfile, cfg.Circus.Pidfile, "")
	if pf != "" {
		if err := writePidfile(pf); err != nil {
			printErr(stderr, err)
			return 1
		}
		defer os.Remove(pf)
	}

	bus, relay, err := startEvents(cfg, log)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	defer relay.Close()
	statsSink, err := listenStats(cfg, log)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	late := &commands.Late{}
	ctl, err := listenControl(cfg, late, log)
	if err != nil {
		if statsSink != nil {
			statsSink.Close()
		}
		printErr(stderr, err)
		return 1
	}
	webLn, err := listenWeb(cfg)
	if err != nil {
		ctl.Close()
		if statsSink != nil {
			statsSink.Close()
		}
		printErr(stderr, err)
		return 1
	}
	a, err := arbiter.New(cfg, arbiter.Options{Logger: log, Publisher: bus})
	if err != nil {
		ctl.Close()
		if webLn != nil {
			webLn.Close()
		}
		if statsSink != nil {
			statsSink.Close()
		}
		printErr(stderr, err)
		return 1
	}
	stopStats, sampler := runStats(statsSink, a, log)
	defer stopStats()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	if sampler == nil {
		// One sampler for the commands and the console, so that both
		// measure cpu from the same baselines; nil if /proc is unreadable,
		// and then each says so.
		sampler, _ = stats.NewSampler()
	}
	stopped := make(chan struct{})
	table, err := commands.New(a, commands.Options{Logger: log, Quit: stop, Stopped: stopped, Sampler: sampler})
	if err != nil {
		ctl.Close()
		if webLn != nil {
			webLn.Close()
		}
		printErr(stderr, err)
		return 1
	}
	late.Set(table)
	con := startWeb(webLn, cfg, path, a, bus, table, sampler, log)
	plug := startPlugins(a, bus, table, log)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(hup)
	var hupWG sync.WaitGroup
	hupWG.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case sig := <-hup:
				if sig == syscall.SIGUSR1 {
					// For an external logrotate, as nginx does.
					if err := a.ReopenLogs(); err != nil {
						log.Error("SIGUSR1: reopening log files", "err", err)
					}
					continue
				}
				reload(ctx, a, path, log)
			}
		}
	})
	err = a.Run(ctx)
	close(stopped)
	stop() // ends the SIGHUP loop too, should Run have returned on its own
	hupWG.Wait()
	con.Close()
	plug.Close()
	closeControl(ctl, table)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	return 0
}

// buildVersion is the module version the binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "(devel)"
}

// reload re-reads the configuration; a file with errors changes nothing.
func reload(ctx context.Context, a *arbiter.Arbiter, path string, log *slog.Logger) {
	log.Info("SIGHUP: reloading configuration", "file", path)
	cfg, err := config.Load(path)
	for _, w := range cfgWarnings(cfg) {
		log.Warn("config", "warning", w.Error())
	}
	if err != nil {
		log.Error("reload refused; keeping the running configuration", "err", err)
		return
	}
	if err := a.Reload(ctx, cfg); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("reload failed; keeping the running configuration", "err", err)
	}
}

func cfgWarnings(cfg *config.Config) []*config.Error {
	if cfg == nil {
		return nil
	}
	return cfg.Warnings
}

// printErr prints every error of a joined error on its own line.
func printErr(w io.Writer, err error) {
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(w, "arbiter: %s\n", line)
	}
}

func firstOf(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func openLog(dest string) (io.Writer, func(), error) {
	switch dest {
	case "-", "stdout":
		return os.Stdout, func() {}, nil
	case "stderr":
		return os.Stderr, func() {}, nil
	}
	if strings.HasPrefix(dest, "syslog:") {
		return nil, nil, fmt.Errorf("log output %q: syslog is not supported yet; use a file or -", dest)
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("log output: %w", err)
	}
	return f, func() { f.Close() }, nil
}

// writePidfile refuses to start when the file names a live process, as
// circusd does, and otherwise writes our pid with mode 0644.
func writePidfile(path string) error {
	if b, err := os.ReadFile(path); err == nil {
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 && pid != os.Getpid() {
			if unix.Kill(pid, 0) == nil {
				return fmt.Errorf("pidfile %s: pid %d is running; is another arbiter running?", path, pid)
			}
		}
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	return nil
}
