// Command upgradebench measures the in-place upgrade (issue 18): "hand-over
// under 100 ms with 1000 workers", and no request failed meanwhile.
//
// It builds cmd/arbiter and examples/httpworker into a temporary
// directory, starts the arbiter on -n workers (/bin/sleep) in -watchers
// watchers, each with a unix socket of its own, plus a watcher of 4 HTTP
// workers on a TCP socket, with the control endpoint (ipc), the events
// (tcp) and the console (http) on. Then, -rounds times, it installs a copy
// of the build over the arbiter's binary (a new inode, so that
// /proc/PID/exe says when the exec happened) and sends SIGUSR2.
//
// The hand-over time of a round runs from SIGUSR2 to the moment every
// endpoint has answered the new image: a fresh control connection running
// list, the ZMTP greeting of the event endpoint, GET / of the console,
// each knocked at over and over once /proc/PID/exe is the new file. It
// counts the exec, the check the old image runs first (arbiter
// --check-upgrade), the freeze, the state's hand-over and the new image's
// start. Meanwhile -clients goroutines request the HTTP watcher, each
// request on a new connection: the failures and the slowest request of
// the round are reported beside it.
//
// The floor is what the same probes cost against the arbiter when no
// upgrade runs; a hand-over cannot be shorter. After the rounds the
// arbiter must still have its pid and every one of its workers.
//
// Run it from inside the module (it builds with the go command):
//
//	go run ./bench/upgradebench -n 1000 -watchers 4 -rounds 5
//
// The exit status is 1 when the benchmark could not run, or when an
// upgrade failed or lost a worker; a hand-over over the target is
// reported as MISS without changing it.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
)

const target = 100 * time.Millisecond

func main() {
	n := flag.Int("n", 1000, "sleeping workers, spread over -watchers watchers")
	watchers := flag.Int("watchers", 4, "watchers of sleeping workers, each with a unix socket")
	rounds := flag.Int("rounds", 5, "upgrades measured")
	clients := flag.Int("clients", 4, "goroutines requesting the HTTP watcher throughout")
	timeout := flag.Duration("timeout", 20*time.Second, "a round's bound, from SIGUSR2 to every endpoint answering")
	flag.Parse()
	if *n < *watchers || *watchers < 1 || *rounds < 1 || *clients < 1 {
		fmt.Fprintln(os.Stderr, "upgradebench: want -n >= -watchers >= 1, -rounds >= 1, -clients >= 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *n, *watchers, *rounds, *clients, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "upgradebench:", err)
		stop()
		os.Exit(1)
	}
}

// result is one round.
type result struct {
	each     map[string]time.Duration // endpoint -> from SIGUSR2 to its answer
	all      time.Duration            // the last of them
	failed   int64                    // HTTP requests failed during the round
	slowest  time.Duration            // the slowest HTTP request of the round
	requests int64                    // HTTP requests answered during the round
	took     time.Duration            // what the new image logged the hand-over took
}

func run(ctx context.Context, n, watchers, rounds, clients int, timeout time.Duration) (err error) {
	dir, err := os.MkdirTemp("", "upgradebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	build0, err := build(ctx, dir, "arbiter.build", "github.com/ringmaster-dev/ringmaster/cmd/arbiter")
	if err != nil {
		return err
	}
	c := &config{dir: dir, workers: n, watchers: watchers}
	if c.httpworker, err = build(ctx, dir, "httpworker", "github.com/ringmaster-dev/ringmaster/examples/httpworker"); err != nil {
		return err
	}
	used := map[int]bool{}
	for _, p := range []*int{&c.httpPort, &c.pubPort, &c.conPort} {
		if *p, err = freePort(used); err != nil {
			return err
		}
	}
	ini, err := c.write()
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "arbiter")
	if _, err := install(build0, bin); err != nil {
		return err
	}
	fmt.Printf("starting the arbiter: %d sleeping workers in %d watchers, 4 HTTP workers\n", n, watchers)
	a, err := start(ctx, bin, ini)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, a.stop()) }()
	pids, err := workers(c.control)
	if err != nil {
		return err
	}
	if len(pids) != n+4 {
		return fmt.Errorf("the arbiter lists %d workers, want %d", len(pids), n+4)
	}
	ps := probes(c)
	floors, err := floor(ps, 20)
	if err != nil {
		return fmt.Errorf("floor: %w", err)
	}
	l := startLoad(fmt.Sprintf("http://127.0.0.1:%d/", c.httpPort), clients)
	defer l.stop()
	var results []result
	for i := range rounds {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r, err := round(a, bin, build0, ps, l, timeout)
		if err != nil {
			return fmt.Errorf("round %d: %w", i+1, err)
		}
		fmt.Printf("round %d: every endpoint answering after %s (control %s, pubsub %s, console %s; the arbiter's took= %s); HTTP: %d answered, %d failed, slowest %s\n",
			i+1, ms(r.all), ms(r.each["control"]), ms(r.each["pubsub"]), ms(r.each["console"]), ms(r.took), r.requests, r.failed, ms(r.slowest))
		results = append(results, r)
	}
	after, err := workers(c.control)
	if err != nil {
		return err
	}
	if a.cmd.ProcessState != nil || exeInode(a.pid()) == 0 {
		return fmt.Errorf("the arbiter (pid %d) is gone", a.pid())
	}
	if !slices.Equal(pids, after) {
		return fmt.Errorf("workers changed across the upgrades: %d before, %d after, %d kept", len(pids), len(after), kept(pids, after))
	}
	report(n, watchers, clients, results, floors, ps)
	return nil
}

// round upgrades once, SIGUSR2 with a fresh copy of the build installed.
func round(a *arbiterProc, bin, src string, ps []probe, l *load, timeout time.Duration) (result, error) {
	r := result{each: map[string]time.Duration{}}
	ino, err := install(src, bin)
	if err != nil {
		return r, err
	}
	ups, fails, _ := a.logged()
	ok0, failed0 := l.ok.Load(), l.failed.Load()
	l.resetWorst()
	start := time.Now()
	deadline := start.Add(timeout)
	if err := a.cmd.Process.Signal(syscall.SIGUSR2); err != nil {
		return r, err
	}
	type answer struct {
		name string
		d    time.Duration
		err  error
	}
	answers := make(chan answer, len(ps))
	for _, p := range ps {
		go func() {
			d, err := answeredAfterExec(p, a.pid(), ino, start, deadline, a.done)
			answers <- answer{p.name, d, err}
		}()
	}
	var errs []error
	for range ps {
		an := <-answers
		r.each[an.name] = an.d
		r.all = max(r.all, an.d)
		errs = append(errs, an.err)
	}
	r.failed, r.requests, r.slowest = l.failed.Load()-failed0, l.ok.Load()-ok0, l.resetWorst()
	if err := errors.Join(errs...); err != nil {
		if _, f, last := a.logged(); f > fails {
			err = fmt.Errorf("%w\nthe arbiter logged: %s", err, last)
		}
		return r, fmt.Errorf("%w\nthe arbiter's log ends:\n%s", err, a.logTail())
	}
	// The new image logs "upgraded" once it runs; its line may come a
	// moment after its endpoints answer.
	for u, _, _ := a.logged(); u == ups && time.Now().Before(deadline); u, _, _ = a.logged() {
		time.Sleep(time.Millisecond)
	}
	if u, _, _ := a.logged(); u == ups {
		return r, errors.New(`the new image answers but never logged "upgraded"`)
	}
	r.took = a.took()
	return r, nil
}

// workers lists the pids of every watcher's workers, sorted.
func workers(endpoint string) ([]int, error) {
	cl, err := control.Dial(endpoint, probeTimeout)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var names struct{ Watchers []string }
	if err := call(ctx, cl, "list", nil, &names); err != nil {
		return nil, err
	}
	var all []int
	for _, name := range names.Watchers {
		var w struct{ Pids []int }
		if err := call(ctx, cl, "list", map[string]any{"name": name}, &w); err != nil {
			return nil, err
		}
		all = append(all, w.Pids...)
	}
	slices.Sort(all)
	return all, nil
}

func kept(before, after []int) int {
	n := 0
	for _, p := range before {
		if _, ok := slices.BinarySearch(after, p); ok {
			n++
		}
	}
	return n
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago and
// is not in used, below the ephemeral range (as testproc.FreePort does for
// tests), where no outgoing connection takes it before the arbiter binds
// it.
func freePort(used map[int]bool) (int, error) {
	for range 200 {
		p := 20000 + rand.N(12000)
		if used[p] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err == nil {
			l.Close()
			used[p] = true
			return p, nil
		}
	}
	return 0, errors.New("no free port found in 20000-31999")
}

// sortedDurations returns ds sorted, for the median and the worst.
func sortedDurations(ds []time.Duration) []time.Duration {
	s := slices.Clone(ds)
	slices.SortFunc(s, cmp.Compare)
	return s
}
