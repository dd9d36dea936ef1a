package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// Tolerances between the early and the late quiet point. Both are taken
// with every watcher at its base size, so that the workers' own fds
// (pipes, pidfds, notify sockets) are the same in number.
const (
	fdSlack      = 8                // more fds than that is a leak
	threadSlack  = 8                // Go keeps threads it made for blocking calls; a few more are noise
	rssSlackFrac = 0.5              // RSS may grow by half...
	rssSlackKB   = 16 << 10         // ...plus 16 MiB, before it counts as growth
	zombieGrace  = 3 * time.Second  // a child of the arbiter may be a zombie this long
	convergeIn   = 60 * time.Second // after a quiet point starts, the counts match by then
)

// converge polls every watcher until the arbiter's numprocesses and the
// live workers it lists both equal the model's target, and reports a
// broken invariant if that takes more than convergeIn. It returns how long
// it took.
func (r *run) converge(ctx context.Context, c *control.Client, what string) (time.Duration, error) {
	t0 := time.Now()
	var rd procfs.Reader
	for {
		var off []string
		for _, s := range r.specs {
			want := r.getTarget(s.name)
			n, err := r.numprocesses(ctx, c, s.name)
			if err != nil {
				return 0, err
			}
			pids, err := r.list(ctx, c, s.name)
			if err != nil {
				return 0, err
			}
			live := 0
			for _, pid := range pids {
				if st, err := rd.Stat(pid); err == nil && st.State != 'Z' {
					live++
				}
			}
			status, err := r.status(ctx, c, s.name)
			if err != nil {
				return 0, err
			}
			if n != want || live != want || len(pids) != want || status != "active" {
				off = append(off, fmt.Sprintf("%s: want %d active, numprocesses %d, %d pids listed %s, %d alive, status %q",
					s.name, want, n, len(pids), describe(pids), live, status))
			}
		}
		if len(off) == 0 {
			return time.Since(t0), nil
		}
		if time.Since(t0) > convergeIn {
			r.fails.add("%s: worker counts did not converge within %v: %s", what, convergeIn, strings.Join(off, "; "))
			for _, s := range r.specs {
				r.resync(ctx, c, s.name)
			}
			return time.Since(t0), nil
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			return 0, err
		}
	}
}

// normalize brings every watcher back to its base size with incr and
// decr, so that resource samples compare like with like.
func (r *run) normalize(ctx context.Context, c *control.Client) {
	for _, s := range r.specs {
		n := r.getTarget(s.name)
		cmd, nb := "incr", s.kind.base-n
		if nb < 0 {
			cmd, nb = "decr", -nb
		}
		if nb == 0 {
			continue
		}
		if _, err := r.call(ctx, c, cmd, map[string]any{"name": s.name, "nb": nb, "waiting": true}); err != nil {
			r.resync(ctx, c, s.name)
			continue
		}
		r.setTarget(s.name, s.kind.base)
	}
}

// resources is what /proc says of the arbiter at a quiet point.
type resources struct {
	at      time.Duration // since the run started
	fds     int
	threads int
	rssKB   int
	workers int
}

func sample(pid int) (resources, error) {
	var res resources
	ents, err := os.ReadDir(procfs.Path(pid, "fd"))
	if err != nil {
		return res, err
	}
	res.fds = len(ents)
	b, err := os.ReadFile(procfs.Path(pid, "status"))
	if err != nil {
		return res, err
	}
	for line := range strings.Lines(string(b)) {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		switch k {
		case "Threads":
			res.threads, _ = strconv.Atoi(v)
		case "VmRSS":
			res.rssKB, _ = strconv.Atoi(v)
		}
	}
	return res, nil
}

// growth compares the early and the late sample and reports what grew
// beyond its tolerance.
func (r *run) growth(early, late resources) {
	if late.fds > early.fds+fdSlack {
		r.fails.add("arbiter fds grew from %d to %d (tolerance +%d) between the quiet points at %.0fs and %.0fs",
			early.fds, late.fds, fdSlack, early.at.Seconds(), late.at.Seconds())
	}
	if late.threads > early.threads+threadSlack {
		r.fails.add("arbiter threads grew from %d to %d (tolerance +%d)", early.threads, late.threads, threadSlack)
	}
	if limit := int(float64(early.rssKB)*(1+rssSlackFrac)) + rssSlackKB; late.rssKB > limit {
		r.fails.add("arbiter RSS grew from %d kB to %d kB (tolerance %d kB)", early.rssKB, late.rssKB, limit)
	}
}

// zombies records the arbiter's zombie children over a run.
type zombies struct {
	mu      sync.Mutex
	most    int           // seen at once
	longest time.Duration // between the first and the last scan that saw one
}

// watch scans /proc every half second until ctx ends for zombies whose
// parent is the arbiter; one that stays a zombie longer than zombieGrace
// was not reaped, and is reported once.
func (z *zombies) watch(ctx context.Context, r *run) {
	type key struct {
		pid   int
		start uint64
	}
	first := map[key]time.Time{}
	reported := map[key]bool{}
	var rd procfs.Reader
	for pause(ctx, 500*time.Millisecond) == nil {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		now := time.Now()
		seen := map[key]bool{}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			st, err := rd.Stat(pid)
			if err != nil || st.State != 'Z' || st.PPid != r.a.Pid() {
				continue
			}
			k := key{pid, st.StartTime}
			seen[k] = true
			if _, ok := first[k]; !ok {
				first[k] = now
			}
			age := now.Sub(first[k])
			z.mu.Lock()
			z.longest = max(z.longest, age)
			z.mu.Unlock()
			if age > zombieGrace && !reported[k] {
				reported[k] = true
				r.fails.add("zombie: pid %d (%s), the arbiter's child, unreaped for over %v", pid, st.Comm, zombieGrace)
			}
		}
		for k := range first {
			if !seen[k] {
				delete(first, k)
			}
		}
		z.mu.Lock()
		z.most = max(z.most, len(seen))
		z.mu.Unlock()
	}
}

// load sends HTTP requests to the shared socket, one at a time per
// client, without keep-alive, so that every request is a connection some
// worker must accept. Failures during chaos are expected (a SIGKILL drops
// the requests its worker held); during a quiet point they are not.
type load struct {
	quiet        atomic.Bool
	ok, failed   [2]atomic.Int64 // [0] during chaos, [1] during quiet points
	mu           sync.Mutex
	firstFailure [2]string
}

func (l *load) run(ctx context.Context, url string) {
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	for pause(ctx, 20*time.Millisecond) == nil {
		phase := 0
		if l.quiet.Load() {
			phase = 1
		}
		err := get(ctx, client, url)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			l.ok[phase].Add(1)
			continue
		}
		l.failed[phase].Add(1)
		l.mu.Lock()
		if l.firstFailure[phase] == "" {
			l.firstFailure[phase] = err.Error()
		}
		l.mu.Unlock()
	}
}

func get(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte("pid ")) {
		return fmt.Errorf("status %d, body %q", resp.StatusCode, body)
	}
	return nil
}

// strays checks that every process running one of the run's programs is
// a worker the arbiter lists or a child of one: a worker's grandchildren
// go with it when it dies, whatever killed it ("a stopped or crashed
// worker's grandchildren never run on unsupervised"). Workers come and go
// (crashy respawns every second or so), so only a process seen as a stray
// in two looks a second apart counts.
func (r *run) strays(ctx context.Context, c *control.Client, what string) error {
	type proc struct {
		pid   int
		start uint64
	}
	look := func() (map[proc]string, error) {
		listed := map[int]bool{r.a.Pid(): true}
		for _, s := range r.specs {
			pids, err := r.list(ctx, c, s.name)
			if err != nil {
				return nil, err
			}
			for _, pid := range pids {
				listed[pid] = true
			}
		}
		found := map[proc]string{}
		var rd procfs.Reader
		arb := r.a.Pid()
		for _, l := range leftovers(r.files.dir) {
			pid, _ := strconv.Atoi(strings.Fields(l)[0])
			st, err := rd.Stat(pid)
			if err != nil || listed[pid] || st.State == 'Z' {
				continue
			}
			pgid, err := syscall.Getpgid(pid)
			if err != nil {
				continue
			}
			// A worker leads its own process group; one the arbiter is
			// stopping is no longer listed. A child of the arbiter in
			// another's group is an orphan reparented to it (it is the
			// child subreaper): a grandchild its worker left behind.
			if st.PPid == arb && pgid == pid {
				continue
			}
			// A child of a worker, while its worker lives.
			if pst, err := rd.Stat(st.PPid); st.PPid != arb && err == nil && pst.PPid == arb {
				continue
			}
			found[proc{pid, st.StartTime}] = fmt.Sprintf("%s (parent %d, group %d)", l, st.PPid, pgid)
		}
		return found, nil
	}
	first, err := look()
	if err != nil || len(first) == 0 {
		return err
	}
	if err := pause(ctx, time.Second); err != nil {
		return err
	}
	second, err := look()
	if err != nil {
		return err
	}
	var both []string
	for p, desc := range second {
		if _, ok := first[p]; ok {
			both = append(both, desc)
		}
	}
	if len(both) > 0 {
		slices.Sort(both)
		r.fails.add("%s: %d process(es) of the run that are neither a listed worker nor its child: %s", what, len(both), strings.Join(both, "; "))
		// Killed, so that the next points report only new ones.
		for p := range second {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	return nil
}

// leftovers returns the processes still running a program of dir, the
// run's directory: after the arbiter exited there should be none.
func leftovers(dir string) []string {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var left []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile(procfs.Path(pid, "cmdline"))
		if err != nil || !bytes.HasPrefix(b, []byte(dir+"/")) {
			continue
		}
		left = append(left, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	}
	return left
}

// killLeftovers SIGKILLs every process running a program of dir: they
// are this run's own workers (or its arbiter), whatever broke.
func killLeftovers(dir string) {
	for _, l := range leftovers(dir) {
		pid, _ := strconv.Atoi(strings.Fields(l)[0])
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
