// Command arbiter runs a Circus configuration in the foreground: it binds
// the configured sockets, starts every watcher's workers and keeps them
// alive until it receives SIGINT, SIGTERM or SIGQUIT. SIGHUP re-reads the
// configuration; a file with errors is reported and the running
// configuration kept. SIGUSR1 opens the workers' log files again, after an
// external logrotate moved them. SIGUSR2 upgrades the arbiter in place: it
// executes its binary again, same pid, every worker kept (upgrade.go).
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
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/logs"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Whatever fds our own parent leaked to us must not leak on into every
	// worker. An image started by an upgrade in place does it once it has
	// taken what it was handed (inherited.taken): until then a way back to
	// the old binary needs every fd it was handed, adopted or not.
	if _, upgraded := os.LookupEnv(handover.EnvState); !upgraded {
		_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	}

	f, code := parseFlags(args, stdout, stderr)
	if code >= 0 {
		return code
	}
	// Started by an upgrade in place: the configuration is the one the
	// image before ran, whatever the disk holds now.
	in, err := inheritedState(stderr)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	var cfg *config.Config
	if in != nil {
		cfg = in.cfg
	} else {
		cfg, err = config.Load(f.path)
		for _, w := range cfgWarnings(cfg) {
			fmt.Fprintf(stderr, "arbiter: warning: %v\n", w)
		}
		if err != nil {
			printErr(stderr, err)
			return 1
		}
	}
	if f.validate {
		fmt.Fprintf(stderr, "%s: ok: %d watchers, %d sockets\n", f.path, len(cfg.Watchers), len(cfg.Sockets))
		return 0
	}

	level := firstOf(f.logLevel, cfg.Circus.LogLevel, "info")
	lv, ok := config.LogLevel(level)
	if !ok {
		printErr(stderr, fmt.Errorf("log level %q: want debug, info, warning, error or critical", level))
		return 2
	}
	output, format, err := logSettings(f, cfg)
	if err != nil {
		printErr(stderr, err)
		return 2
	}
	log, err := openLog(output, format, lv)
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	defer log.close()

	if cfg.Circus.Umask >= 0 {
		syscall.Umask(cfg.Circus.Umask)
	}
	if pf := firstOf(f.pidfile, cfg.Circus.Pidfile, ""); pf != "" {
		if err := writePidfile(pf); err != nil {
			printErr(stderr, err)
			return 1
		}
		defer os.Remove(pf)
	}
	if err := serve(f.path, cfg, log.Logger, log.journal, in); err != nil {
		printErr(stderr, err)
		return exitCode(err)
	}
	return 0
}

// flags are the command line's options, and the config file's path.
type flags struct {
	validate, version            bool
	checkUpgrade                 bool
	logLevel, logOutput, pidfile string
	path                         string
	logFormat                    string
}

// parseFlags reads the command line; code is the exit code when the
// arbiter has nothing more to do (usage, --help, --version), -1 otherwise.
func parseFlags(args []string, stdout, stderr io.Writer) (f flags, code int) {
	fs := flag.NewFlagSet("arbiter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&f.validate, "validate", false, "check `CONFIG`, list every problem and exit 0 (valid) or 1")
	fs.StringVar(&f.logLevel, "log-level", "", "debug, info, warning, error or critical (default: [circus] loglevel, else info)")
	fs.StringVar(&f.logOutput, "log-output", "", "- or stdout, stderr, a file to append to, or syslog://HOST[:PORT][?FACILITY], syslog:///PATH[?FACILITY], syslog://[?FACILITY] (default: [circus] logoutput, else -)")
	fs.StringVar(&f.logFormat, "log-format", "", "text or json (default: [circus] logformat, else text)")
	fs.StringVar(&f.pidfile, "pidfile", "", "write the arbiter's pid to this file (default: [circus] pidfile)")
	fs.BoolVar(&f.version, "version", false, "print the version and exit")
	fs.BoolVar(&f.checkUpgrade, "check-upgrade", false, "print the hand-over formats this binary reads and its version, and exit 0 (an upgrade in place asks the new binary)")
	fs.Usage = func() {} // help.go prints it
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, fs)
		return f, 0
	} else if err != nil {
		printUsage(stderr)
		return f, 2
	}
	if f.version {
		fmt.Fprintf(stderr, "arbiter (Ringmaster) %s\n", buildVersion())
		return f, 0
	}
	if f.checkUpgrade {
		printCheckUpgrade(stdout)
		return f, 0
	}
	if fs.NArg() != 1 {
		printUsage(stderr)
		return f, 2
	}
	f.path = fs.Arg(0)
	return f, -1
}

// endpoints are what the arbiter serves besides its sockets, bound
// before it starts so that an address in use fails early.
type endpoints struct {
	bus   *pubsub.Bus
	relay *zmqpub.Relay
	stats *zmqpub.Sink // nil without [circus] statsd
	late  *commands.Late
	ctl   *control.Server
	web   net.Listener // nil without the console
	ops   net.Listener // nil without [circus] metrics
}

// openEndpoints binds the event, stats, control, console and metrics endpoints of
// cfg; on failure nothing stays open.
func openEndpoints(cfg *config.Config, log *slog.Logger, in *inherited) (*endpoints, error) {
	// A request that comes before the command table waits for it: the
	// listeners of an arbiter upgraded in place take connections while it
	// restores its state.
	e := &endpoints{late: &commands.Late{Config: cfg, Wait: 10 * time.Second}}
	var err error
	if e.bus, e.relay, err = startEvents(cfg, e.late, log, in.subscribers()); err != nil {
		return nil, err
	}
	if in != nil {
		// The events go on from the old image's last number.
		e.bus.Continue(in.doc.Seq)
	}
	if e.stats, err = listenStats(cfg, e.late, log); err == nil {
		if e.ctl, err = listenControl(cfg, e.late, log); err == nil {
			if e.web, err = listenWeb(cfg); err == nil {
				e.ops, err = listenOps(cfg)
			}
		}
	}
	if err != nil {
		e.abort()
		e.relay.Close()
		return nil, err
	}
	return e, nil
}

// abort closes the endpoints the arbiter will not serve, but the event
// relay, which the caller closes.
func (e *endpoints) abort() {
	if e.ctl != nil {
		e.ctl.Close()
	}
	if e.web != nil {
		e.web.Close()
	}
	if e.ops != nil {
		e.ops.Close()
	}
	if e.stats != nil {
		e.stats.Close()
	}
}

// serve runs the arbiter of cfg with its endpoints until SIGINT, SIGTERM,
// SIGQUIT or quit ends it, then closes the endpoints in order: the console
// and plugins, then the control endpoint once its last replies are out.
func serve(path string, cfg *config.Config, log *slog.Logger, journal *logs.Journal, in *inherited) error {
	svc, err := newService(log)
	if err != nil {
		return in.fail(err)
	}
	in.inheritListeners()
	ep, err := openEndpoints(cfg, log, in)
	if err != nil {
		return in.fail(err)
	}
	in.mark("endpoints")
	defer ep.relay.Close()
	a, err := newArbiter(cfg, arbiter.Options{Logger: log, Publisher: ep.bus, Reloads: svc}, in)
	if err == nil && in != nil && in.failed == "" && refuseLate != "" {
		err = errors.New(refuseLate)
	}
	if err != nil {
		ep.abort()
		return in.fail(err)
	}
	in.mark("restored")
	stopStats, sampler := runStats(ep.stats, a, log)
	defer stopStats()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGQUIT)
	defer stop()
	up := newUpgrader(ctx, a, ep, svc, in, log)
	if sampler == nil {
		// One sampler for the commands and the console, so that both
		// measure cpu from the same baselines; nil if /proc is unreadable,
		// and then each says so.
		sampler, _ = stats.NewSampler()
	}
	stopped := make(chan struct{})
	table, err := commands.New(a, commands.Options{
		Logger: log, Quit: stop, Stopped: stopped, Sampler: sampler,
		Enforce: true, Publish: ep.bus.Publish, Journal: journal, Upgrader: up,
	})
	if err != nil {
		ep.ctl.Close()
		for _, ln := range []net.Listener{ep.web, ep.ops} {
			if ln != nil {
				ln.Close()
			}
		}
		return err
	}
	ep.late.Set(table)
	ops := startOps(ep.ops, cfg, a, ep.bus, ep.relay, table, log)
	con := startWeb(ep.web, cfg, path, a, ep.bus, table, sampler, ops.Routes(), log)
	plug := startPlugins(a, ep.bus, table, log)
	var sigs sync.WaitGroup
	sigs.Go(func() { handleSignals(ctx, a, path, log, svc, up) })
	sigs.Go(func() { svc.run(ctx, a) })
	in.taken(ep.bus, up, log)
	if in.reloadAsked() {
		sigs.Go(func() {
			select {
			case <-a.Started():
				svc.ReloadBegin()
				svc.ReloadEnd(reload(ctx, a, path, log))
			case <-ctx.Done():
			}
		})
	}
	err = a.Run(ctx)
	close(stopped)
	stop() // ends handleSignals and svc too, should Run have returned on its own
	sigs.Wait()
	up.runs.Wait()
	con.Close()
	ops.Close()
	plug.Close()
	closeControl(ep.ctl, table)
	return err
}

// handleSignals reloads the configuration on SIGHUP, reopens the log
// files on SIGUSR1 (for an external logrotate, as nginx does) and upgrades
// the arbiter in place on SIGUSR2 (as nginx and gunicorn do), until ctx is
// done. svc hears of every SIGHUP, even one
// whose file does not load: a manager that sent it waits for READY=1.
func handleSignals(ctx context.Context, a *arbiter.Arbiter, path string, log *slog.Logger, svc *service, up *upgrader) {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigc)
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-sigc:
			switch sig {
			case syscall.SIGUSR1:
				if err := a.ReopenLogs(); err != nil {
					log.Error("SIGUSR1: reopening log files", "err", err)
				}
			case syscall.SIGUSR2:
				// Its failure is logged and published by the upgrader.
				_, _ = up.Start("", false)
			default:
				svc.ReloadBegin()
				svc.ReloadEnd(reload(ctx, a, path, log))
			}
		}
	}
}

// buildVersion is the version the build stamped (version.go), else the
// module version the binary was built from.
func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Version
	}
	return "(devel)"
}

// reload re-reads the configuration; a file with errors changes nothing.
// The error it returns is already logged.
func reload(ctx context.Context, a *arbiter.Arbiter, path string, log *slog.Logger) error {
	log.Info("SIGHUP: reloading configuration", "file", path)
	cfg, err := config.Load(path)
	for _, w := range cfgWarnings(cfg) {
		log.Warn("config", "warning", w.Error())
	}
	if err != nil {
		log.Error("reload refused; keeping the running configuration", "err", err)
		return err
	}
	err = a.Reload(ctx, cfg)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("reload failed; keeping the running configuration", "err", err)
	}
	return err
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
