package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// maxWorkers bounds every watcher's numprocesses, so that a long run on a
// shared 2-core machine stays a few dozen processes.
const maxWorkers = 6

// kind is one sort of watcher. The watchers of a run cycle through kinds,
// so that five of them cover every sort.
type kind struct {
	name     string
	base     int           // numprocesses at start, and at every quiet point's resource sample
	graceful time.Duration // graceful_timeout
	serves   bool          // its workers serve HTTP on the shared socket
	// body is the watcher's lines besides numprocesses, graceful_timeout
	// and the option the run changes; %[1]s is the test worker, %[2]s the
	// HTTP worker, %[3]s the run's directory, %[4]s the watcher's name.
	body string
}

var kinds = []kind{
	// The example HTTP worker: ready = notify, drains on SIGTERM. A graceful
	// restart or reload waits for the new workers' READY=1.
	{name: "web", base: 3, graceful: 5 * time.Second, serves: true, body: `cmd = %[2]s --fd $(circus.sockets.web) --drain 2s
ready = notify
ready_timeout = 10
`},
	// Workers that sleep and die at once on SIGTERM.
	{name: "sleep", base: 4, graceful: 3 * time.Second, body: `cmd = %[1]s sleep
`},
	// Workers that exit on their own after 1.1 to 1.6 s (by wid), so that
	// the pool is always respawning. Flapping is off, so that the
	// arbiter never gives up on them and the count always converges.
	{name: "crashy", base: 3, graceful: 3 * time.Second, body: `cmd = %[1]s sleepfor 1$(circus.wid)00ms
check_flapping = false
`},
	// Workers that ignore SIGTERM and have a grandchild that ignores it
	// too: every stop waits graceful_timeout and kills the process group.
	{name: "stubborn", base: 2, graceful: time.Second, body: `cmd = %[1]s ignoreterm %[3]s/%[4]s-$(circus.wid).pids
`},
	// The test worker serving HTTP on the same socket, ready = notify.
	{name: "notify", base: 2, graceful: 3 * time.Second, serves: true, body: `cmd = %[1]s serve --fd $(circus.sockets.web) --notify
ready = notify
ready_timeout = 10
`},
}

// watcherSpec is one watcher of a run as the file says it now. The file
// is rewritten before every reloadconfig and SIGHUP.
type watcherSpec struct {
	name string
	kind kind
	n    int // numprocesses in the file
	gen  int // the value of $CHAOS_GEN in its [env:]; a change reloads its workers
	slow bool
}

// newSpecs makes n watchers, cycling through kinds: web, sleep, crashy,
// stubborn, notify, web2, sleep2...
func newSpecs(n int) []*watcherSpec {
	specs := make([]*watcherSpec, n)
	for i := range specs {
		k := kinds[i%len(kinds)]
		name := k.name
		if i >= len(kinds) {
			name = fmt.Sprintf("%s%d", k.name, i/len(kinds)+1)
		}
		specs[i] = &watcherSpec{name: name, kind: k, n: k.base}
	}
	return specs
}

// runFiles are the paths a run's configuration refers to.
type runFiles struct {
	dir, ini, control, pubsub string
	port                      int // the shared HTTP socket's
	bins                      binaries
}

// writeConfig writes the configuration for specs. The control and event
// endpoints are unix sockets in the run's directory, so that runs never
// compete for a port with each other or with anyone else's arbiter.
func writeConfig(f runFiles, specs []*watcherSpec) error {
	var b strings.Builder
	fmt.Fprintf(&b, `[circus]
endpoint = ipc://%s
pubsub_endpoint = ipc://%s
loglevel = info

[socket:web]
host = 127.0.0.1
port = %d
`, f.control, f.pubsub, f.port)
	for _, s := range specs {
		graceful := s.kind.graceful
		if s.slow {
			// The other option a reload changes: it reloads nothing by
			// itself, but makes the watcher "changed".
			graceful += time.Second
		}
		fmt.Fprintf(&b, "\n[watcher:%s]\nnumprocesses = %d\ngraceful_timeout = %g\n", s.name, s.n, graceful.Seconds())
		fmt.Fprintf(&b, s.kind.body, f.bins.testworker, f.bins.httpworker, f.dir, s.name)
		fmt.Fprintf(&b, "\n[env:%s]\nCHAOS_GEN = %d\n", s.name, s.gen)
	}
	// Written whole and renamed, so that a reload never reads half a file.
	tmp := f.ini + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp, f.ini); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// maxGraceful is the longest graceful_timeout specs can have.
func maxGraceful(specs []*watcherSpec) time.Duration {
	var d time.Duration
	for _, s := range specs {
		d = max(d, s.kind.graceful+time.Second)
	}
	return d
}

func newRunFiles(dir string, bins binaries, port int) runFiles {
	return runFiles{
		dir:     dir,
		ini:     filepath.Join(dir, "chaos.ini"),
		control: filepath.Join(dir, "control.sock"),
		pubsub:  filepath.Join(dir, "pubsub.sock"),
		port:    port,
		bins:    bins,
	}
}
