package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// The new image's side of the upgrade in place (upgrade.go has the old
// one's): the document the image before left, and the way back to it.

// refuseHandover, set at build time (-ldflags "-X main.refuseHandover=why")
// by the tests of the way back only, makes this binary give a hand-over
// up after its exec, as one that cannot restore the state would: the kind
// of failure --check-upgrade cannot foresee.
var refuseHandover string

// refuseLate is refuseHandover later on: once the new image has taken the
// listeners and adopted the sockets, just before it would restore the
// watchers (the tests of a way back that must bind the listeners anew).
var refuseLate string

// inherited is what this image was handed.
type inherited struct {
	doc    upgradeDoc
	cfg    *config.Config
	fd     int    // the document
	exe    int    // the old binary, for the way back; -1 if not given
	failed string // set when this is the old image, back after a failed upgrade
	// rebind: the image that went back had taken the listeners already
	// (their fds are gone); this one binds its own. listened: this image
	// has given the listeners to its endpoints.
	rebind, listened bool
	// adopted holds what was made of the handed-over fds (sockets) for as
	// long as a way back may need those fds open: a finalizer must not
	// close them.
	adopted []any
	// phases are when this image reached each step of its start, since
	// the old one was asked (the document's Since), for the debug log.
	phases []any
}

// mark records that this image reached step (nil-safe).
func (in *inherited) mark(step string) {
	if in != nil {
		in.phases = append(in.phases, step, time.Since(in.doc.Since).Round(10*time.Microsecond).String())
	}
}

// envRebind, set on the way back when the listeners' fds were taken,
// tells the old image to bind its endpoints anew.
const envRebind = "RINGMASTER_UPGRADE_REBIND"

// docFDs are the fds the document names that the way back must keep
// open: those the new image may have adopted (made close-on-exec) but not
// closed.
func (in *inherited) docFDs() []int {
	var fds []int
	if h := in.doc.Arbiter; h != nil {
		for _, st := range h.Sockets {
			fds = append(fds, st.FD)
		}
		for _, w := range h.Watchers {
			for _, p := range w.Workers {
				if p.NotifyFD >= 0 {
					fds = append(fds, p.NotifyFD)
				}
			}
		}
	}
	if !in.listened {
		for _, fd := range in.doc.Listeners {
			fds = append(fds, fd)
		}
	}
	return fds
}

// inheritedState reads the hand-over this image was started with, if any
// (nil, nil otherwise). If it cannot be taken, it goes back to the image
// before, which never returns; the error is returned only when that too
// is impossible.
func inheritedState(stderr io.Writer) (*inherited, error) {
	fd, ok, err := handover.FromEnv()
	if !ok {
		return nil, nil
	}
	in := &inherited{fd: fd, exe: -1, failed: os.Getenv(handover.EnvFailed), rebind: os.Getenv(envRebind) != ""}
	os.Unsetenv(handover.EnvFailed)
	os.Unsetenv(envRebind)
	if v, set := os.LookupEnv(handover.EnvExe); set {
		os.Unsetenv(handover.EnvExe)
		if n, err := strconv.Atoi(v); err == nil && n > 2 {
			in.exe = n
		}
	}
	if err == nil && refuseHandover != "" && in.failed == "" {
		err = errors.New(refuseHandover)
	}
	if err == nil {
		_, err = handover.Read(fd, &in.doc)
	}
	if err == nil {
		in.cfg, err = config.LoadSources(in.doc.Sources)
		if err == nil {
			in.cfg.Circus = in.doc.Circus
		}
	}
	if err != nil {
		return nil, in.goBack(err, stderr)
	}
	in.mark("document read")
	return in, nil
}

// goBack executes the old binary with the same document, telling it why
// (the way back of a failed upgrade). It returns only if it cannot.
func (in *inherited) goBack(why error, stderr io.Writer) error {
	fmt.Fprintf(stderr, "arbiter: upgrade: this binary cannot take the hand-over: %v\n", why)
	if in.failed != "" {
		return fmt.Errorf("upgrade: the way back failed too (%v), after: %s", why, in.failed)
	}
	if in.exe < 0 {
		return fmt.Errorf("upgrade: no old binary to go back to: %w", why)
	}
	for _, fd := range []int{in.fd, in.exe} {
		if err := handover.KeepFD(fd); err != nil {
			return fmt.Errorf("upgrade: way back: fd %d: %w", fd, err)
		}
	}
	for _, fd := range in.docFDs() {
		// One this image closed is bound anew (listeners) or found
		// missing, and said so, by the old image.
		_ = handover.KeepFD(fd)
	}
	env := append(os.Environ(),
		handover.EnvState+"="+strconv.Itoa(in.fd),
		handover.EnvExe+"="+strconv.Itoa(in.exe),
		handover.EnvFailed+"=the new binary gave the hand-over up: "+why.Error())
	if in.listened {
		env = append(env, envRebind+"=1")
	}
	err := syscall.Exec("/proc/self/fd/"+strconv.Itoa(in.exe), os.Args, env)
	return fmt.Errorf("upgrade: way back: exec the old binary: %w (after: %v)", err, why)
}

// done closes the document and the old binary once the hand-over is
// taken: nothing can go back any more.
func (in *inherited) done() {
	unix.Close(in.fd)
	if in.exe >= 0 {
		unix.Close(in.exe)
	}
}

// outcome is what the upgrade command's query reports of this hand-over.
func (in *inherited) outcome(version string) control.Object {
	if in.failed != "" {
		return control.Object{{Key: "attempt", Value: in.doc.Attempt}, {Key: "error", Value: in.failed}}
	}
	return control.Object{
		{Key: "attempt", Value: in.doc.Attempt}, {Key: "from", Value: in.doc.Version}, {Key: "to", Value: version},
		{Key: "handover_ms", Value: float64(time.Since(in.doc.Since).Microseconds()) / 1000},
	}
}

// fail is err, after which an image started by a hand-over goes back to
// the image before (returning only if it cannot).
func (in *inherited) fail(err error) error {
	if in == nil {
		return err
	}
	return in.goBack(err, os.Stderr)
}

// newArbiter is the Arbiter of cfg: a new one, or the one handed over.
func newArbiter(cfg *config.Config, opts arbiter.Options, in *inherited) (*arbiter.Arbiter, error) {
	if in == nil {
		return arbiter.New(cfg, opts)
	}
	if in.doc.Arbiter == nil {
		return nil, errors.New("upgrade: the hand-over has no arbiter state")
	}
	socks, err := adoptSockets(cfg, in)
	if err != nil {
		return nil, err
	}
	return arbiter.Restore(cfg, socks, in.doc.Arbiter, opts)
}

// taken says the hand-over is done: from here on nothing goes back (the
// arbiter is about to reap). The new image reports the upgrade; the old
// one, back after a failure, why it is back.
func (in *inherited) taken(bus *pubsub.Bus, up *upgrader, log *slog.Logger) {
	if in == nil {
		return
	}
	in.mark("taken")
	log.Debug("upgrade: the new image's start, since the old one was asked", in.phases...)
	in.done()
	closeUnclaimed(log)
	// Everything handed over is adopted (close-on-exec) or closed: no fd
	// of this process goes to a worker but those a spawn gives it.
	_ = unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if in.failed != "" {
		log.Error("upgrade failed; the old binary is back with every worker", "attempt", in.doc.Attempt, "reason", in.failed)
		bus.Publish(pubsub.Event{Kind: pubsub.UpgradeFailed, Pid: os.Getpid(), Reason: in.failed})
		return
	}
	took := time.Since(in.doc.Since)
	log.Info("upgraded in place", "attempt", in.doc.Attempt, "from", in.doc.Version, "to", up.version,
		"binary", in.doc.Binary, "took", took.Round(time.Microsecond))
	bus.Publish(pubsub.Event{Kind: pubsub.Upgrade, Pid: os.Getpid(), Versions: [2]string{in.doc.Version, up.version}})
}

// subscribers is how many event subscribers the image before had.
func (in *inherited) subscribers() int {
	if in == nil {
		return 0
	}
	return in.doc.Subscribers
}

// reloadAsked says the upgrade that started this image asked for the
// configuration file to be reloaded once it runs.
func (in *inherited) reloadAsked() bool {
	return in != nil && in.failed == "" && in.doc.ReloadConfig
}
