package arbiter

import (
	"errors"
	"maps"
	"reflect"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// outputGrace is how long a removed watcher's output may take to end once
// its workers are gone: what they started may still write for a moment.
const outputGrace = 2 * time.Second

// Output returns where the watcher's workers write, with their recent
// output.
func (w *Watcher) Output() *logs.Output { return w.out }

// ReopenLogs opens every watcher's log files again at their paths, for an
// external logrotate that moved them away (SIGUSR1).
func (a *Arbiter) ReopenLogs() error {
	var errs []error
	for _, w := range a.Watchers() {
		if err := w.out.Reopen(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	a.log.Info("log files reopened")
	return nil
}

func streamOf(wc *config.Watcher, s logs.Stream) (config.Stream, map[string]string, string) {
	if s == logs.Stderr {
		return wc.Stderr, wc.StderrStream, "stderr_stream."
	}
	return wc.Stdout, wc.StdoutStream, "stdout_stream."
}

// openStream opens the destination of stream s of wc. cfg, when not nil,
// is the configuration wc comes from: a failure then names its file and
// line.
func (a *Arbiter) openStream(wc *config.Watcher, cfg *config.Config, s logs.Stream) (*logs.Dest, error) {
	spec, raw, prefix := streamOf(wc, s)
	d, err := logs.Open(wc.Name, s, spec, a.con)
	if err != nil {
		key := prefix + "filename"
		if _, ok := raw["filename"]; !ok {
			key = prefix + "class"
		}
		section := "watcher:" + wc.Name
		var pos config.Position
		if cfg != nil {
			if pos = cfg.Pos(section, key); pos.Line == 0 {
				pos = cfg.Pos(section, "")
			}
		}
		return nil, &config.Error{File: pos.File, Line: pos.Line, Section: section, Key: key, Msg: err.Error()}
	}
	if spec.Filename == "" && d.Path() != "" {
		a.log.Info("no filename: output goes to a temporary file", "watcher", wc.Name, "stream", s.String(), "path", d.Path())
	}
	return d, nil
}

// newOutput opens both streams of wc.
func (a *Arbiter) newOutput(wc *config.Watcher, cfg *config.Config) (*logs.Output, error) {
	stdout, err := a.openStream(wc, cfg, logs.Stdout)
	if err != nil {
		return nil, err
	}
	stderr, err := a.openStream(wc, cfg, logs.Stderr)
	if err != nil {
		stdout.Close()
		return nil, err
	}
	return logs.NewOutput(stdout, stderr, a.log.With("watcher", wc.Name)), nil
}

// streamChange is the destinations opened for the streams of a watcher
// whose configuration changes them; nil where a stream does not change.
type streamChange [2]*logs.Dest

// openChanged opens the streams of wc that differ from those w writes to.
func (a *Arbiter) openChanged(w *Watcher, wc *config.Watcher, cfg *config.Config) (streamChange, error) {
	var c streamChange
	for _, s := range []logs.Stream{logs.Stdout, logs.Stderr} {
		spec, _, _ := streamOf(wc, s)
		if w.out.Dest(s).Spec() == spec {
			continue
		}
		d, err := a.openStream(wc, cfg, s)
		if err != nil {
			c.discard()
			return streamChange{}, err
		}
		c[s] = d
	}
	return c, nil
}

// apply makes w write to the new destinations, without stopping a worker.
func (c streamChange) apply(w *Watcher) {
	for s, d := range c {
		if d != nil {
			w.out.Use(logs.Stream(s), d)
			w.log.Info("output stream changed", "stream", logs.Stream(s).String(), "class", d.Spec().Class, "path", d.Path())
		}
	}
}

// discard closes destinations that will not be used.
func (c streamChange) discard() {
	for _, d := range c {
		if d != nil {
			d.Close()
		}
	}
}

// liveChange reports whether two watcher configs differ only in what
// takes effect without new workers: numprocesses (the pool is resized in
// place, as Circus's reloadconfig does) and the output streams (the
// workers' pipes are already the arbiter's; only their destination
// changes), the health check (read at each round), readiness (asked of
// new workers only), the resource limits (read at each sample) and the
// hooks (read at each call).
func liveChange(a, b *config.Watcher) bool {
	strip := func(w *config.Watcher) config.Watcher {
		c := *w
		c.NumProcesses = 0
		// Read when the watcher gives up.
		c.Critical = false
		// Read at each death.
		c.RestartDelay, c.RestartMaxDelay = 0, 0
		c.Stdout, c.Stderr, c.StdoutStream, c.StderrStream = config.Stream{}, config.Stream{}, nil, nil
		// Checks read the watcher's options at each round.
		c.Health = config.Health{}
		c.Ready, c.Limits = config.Ready{}, config.Limits{}
		// The autoscaler reads its bounds at each sample.
		c.Autoscale = config.Autoscale{}
		// Hooks are read at each call.
		c.Hooks = nil
		c.Options = maps.Clone(w.Options)
		maps.DeleteFunc(c.Options, func(k, _ string) bool {
			return k == "numprocesses" || k == "critical" || strings.HasPrefix(k, "stdout_stream.") || strings.HasPrefix(k, "stderr_stream.") ||
				strings.HasPrefix(k, "health.") || strings.HasPrefix(k, "limit.") ||
				k == "ready" || k == "ready_timeout" || k == "watchdog_sec" || k == "restart_delay" || k == "restart_max_delay" ||
				strings.HasPrefix(k, "hooks.") || k == "hook_timeout" || strings.HasPrefix(k, "autoscale.")
		})
		return c
	}
	return reflect.DeepEqual(strip(a), strip(b))
}
