package arbiter

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
)

// The roles the test binary plays for the guardian's tests across a real
// exec (guardian_exec_test.go): TestMain hands the process to GuardRole
// when GuardRoleEnv is set. Each role works in the directory named by
// GuardDirEnv, where it finds test.ini and leaves its log (arbiter.log)
// and its marks (a file per step, holding the process's pid).
const (
	GuardRoleEnv = "RINGMASTER_TEST_GUARD_ROLE" // arbiter, execd or adopt
	GuardDirEnv  = "RINGMASTER_TEST_GUARD_DIR"
	// GuardThenEnv says what the arbiter role does once started: wait
	// (to be killed), exec (at a SIGUSR1, hand the guardian over and
	// exec the execd role) or adopt (the same, into the adopt role).
	GuardThenEnv  = "RINGMASTER_TEST_GUARD_THEN"
	guardStateEnv = "RINGMASTER_TEST_GUARD_STATE"
)

// GuardRole plays the role GuardRoleEnv names, if any, and returns the
// process's exit code and true; or false when no role is asked for.
func GuardRole() (int, bool) {
	role := os.Getenv(GuardRoleEnv)
	if role == "" {
		return 0, false
	}
	dir := os.Getenv(GuardDirEnv)
	var err error
	switch role {
	case "arbiter":
		err = roleArbiter(dir, os.Getenv(GuardThenEnv))
	case "execd":
		err = mark(dir, "execd")
		for err == nil {
			time.Sleep(time.Hour) // until the test kills it
		}
	case "adopt":
		err = roleAdopt(dir)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "guard role %s: %v\n", role, err)
		return 1, true
	}
	return 0, true
}

// mark leaves the file name in dir, holding the process's pid.
func mark(dir, name string) error {
	return os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

func roleLog(dir string) (*slog.Logger, error) {
	f, err := os.OpenFile(filepath.Join(dir, "arbiter.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug})), nil
}

// roleArbiter runs an arbiter on dir/test.ini, and once it has started,
// does what then says.
func roleArbiter(dir, then string) error {
	cfg, err := config.Load(filepath.Join(dir, "test.ini"))
	if err != nil {
		return err
	}
	log, err := roleLog(dir)
	if err != nil {
		return err
	}
	a, err := New(cfg, Options{Logger: log})
	if err != nil {
		return err
	}
	// Before the start: the test sends it as soon as the workers are up.
	goAhead := make(chan os.Signal, 1)
	signal.Notify(goAhead, syscall.SIGUSR1)
	go func() { _ = a.Run(context.Background()) }()
	<-a.Started()
	if err := mark(dir, "started"); err != nil {
		return err
	}
	if then == "wait" {
		for {
			time.Sleep(time.Hour) // until the test kills it
		}
	}
	next := map[string]string{"exec": "execd", "adopt": "adopt"}[then]
	if next == "" {
		return fmt.Errorf("unknown %s %q", GuardThenEnv, then)
	}
	<-goAhead
	// On a goroutine of its own: on whatever thread, never a spawner's,
	// whose children the parent-death signal would have tied to it.
	errc := make(chan error, 1)
	go func() {
		st, err := a.guardianOut()
		if err != nil {
			errc <- err
			return
		}
		b, err := json.Marshal(st)
		if err != nil {
			errc <- err
			return
		}
		env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, GuardRoleEnv+"=") })
		env = append(env, GuardRoleEnv+"="+next, guardStateEnv+"="+string(b))
		errc <- syscall.Exec(os.Args[0], os.Args, env)
	}()
	return <-errc
}

// roleAdopt is the new image of an upgrade, as far as the guardian goes:
// it adopts the guardian the old one handed over, and on SIGTERM stands it
// down as a clean shutdown would.
func roleAdopt(dir string) error {
	var st *guardState
	if err := json.Unmarshal([]byte(os.Getenv(guardStateEnv)), &st); err != nil {
		return err
	}
	log, err := roleLog(dir)
	if err != nil {
		return err
	}
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	orphans := make(chan exitStatus, 64)
	theReaper.acquire(orphans, false)
	defer theReaper.release(orphans)
	a := &Arbiter{log: log, glink: newGuardLink()}
	a.startGuardianFrom(st)
	if err := mark(dir, "adopted"); err != nil {
		return err
	}
	<-term
	a.stopGuardian()
	return mark(dir, "stopped")
}
