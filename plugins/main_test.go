package plugins_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/plugins"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// worker is testworker, built before any test: an in-process arbiter reaps
// every child of the test binary, so nothing is exec'd once one runs.
var worker string

func TestMain(m *testing.M) { os.Exit(arbtest.Main(m, &worker)) }

// env is an arbiter with its command table and a plugin Manager, all in
// this process, as cmd/arbiter wires them.
type env struct {
	t   *testing.T
	dir string
	a   *arbiter.Arbiter
	tab *commands.Table
	mgr *plugins.Manager
	log *arbtest.LogBuf
}

// start writes ini (WORKER replaced by testworker's path, DIR by a fresh
// directory), loads it and runs it until the test ends.
func start(t *testing.T, ini string) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), log: &arbtest.LogBuf{T: t}}
	path := arbtest.WriteINI(t, e.dir, worker, ini)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	logger := slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	bus := pubsub.NewBus()
	e.a, err = arbiter.New(cfg, arbiter.Options{Logger: logger, Publisher: bus})
	if err != nil {
		t.Fatalf("arbiter.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	e.tab, err = commands.New(e.a, commands.Options{Logger: logger, Quit: cancel, Stopped: stopped})
	if err != nil {
		cancel()
		t.Fatalf("commands.New: %v", err)
	}
	// Before Run, as cmd/arbiter does, so that the plugins see the first
	// spawns.
	e.mgr = plugins.Start(plugins.Options{Commands: e.tab, Bus: bus, Config: e.a.Config, Logger: logger})
	var runErr error
	go func() {
		runErr = e.a.Run(ctx)
		close(stopped)
	}()
	t.Cleanup(func() {
		// As cmd/arbiter closes them: the plugins first, the table last.
		e.mgr.Close()
		cancel()
		select {
		case <-stopped:
			if runErr != nil {
				t.Errorf("Run: %v", runErr)
			}
		case <-time.After(60 * time.Second):
			t.Error("Run did not return within 60s of cancel")
		}
		e.tab.Close()
	})
	select {
	case <-e.a.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start within 30s")
	}
	return e
}

// call runs a command through the table and returns the reply's fields.
func (e *env) call(cmd string, props map[string]any) map[string]json.RawMessage {
	e.t.Helper()
	req := control.Request{ID: json.RawMessage("1"), Command: cmd, Properties: map[string]json.RawMessage{}}
	for k, v := range props {
		b, _ := json.Marshal(v)
		req.Properties[k] = b
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := e.tab.Handle(ctx, req).Render(req.ID, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	var r map[string]json.RawMessage
	if err := json.Unmarshal(b, &r); err != nil {
		e.t.Fatal(err)
	}
	if string(r["status"]) == `"error"` {
		e.t.Fatalf("%s %v: %s", cmd, props, b)
	}
	return r
}

// pids returns the pids of watcher name, sorted.
func (e *env) pids(name string) []int {
	e.t.Helper()
	var pids []int
	if err := json.Unmarshal(e.call("list", map[string]any{"name": name})["pids"], &pids); err != nil {
		e.t.Fatal(err)
	}
	slices.Sort(pids)
	return pids
}

// waitPids waits until watcher name has n live workers and returns them.
func (e *env) waitPids(name string, n int) []int {
	e.t.Helper()
	var ps []int
	waitFor(e.t, fmt.Sprintf("%d workers of %s", n, name), 20*time.Second, func() bool {
		ps = e.pids(name)
		return len(ps) == n && !slices.ContainsFunc(ps, testproc.Gone)
	})
	return ps
}

// replaced waits until none of old is among watcher name's workers, and
// n are running again.
func (e *env) replaced(name string, old []int, n int, within time.Duration) []int {
	e.t.Helper()
	var ps []int
	waitFor(e.t, fmt.Sprintf("%s's workers %v replaced", name, old), within, func() bool {
		ps = e.pids(name)
		return len(ps) == n && !slices.ContainsFunc(ps, func(p int) bool { return slices.Contains(old, p) })
	})
	return ps
}

// waitFor polls cond until it holds, failing the test after d.
var waitFor = testproc.WaitFor
