package arbiter

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/sockets"
)

// reloadconfig: a new configuration applied to a running arbiter.

// Reload applies a new configuration to a running arbiter: sockets whose
// spec changed are bound anew first (so a failure changes nothing);
// watchers that are new start, those gone stop, those whose numprocesses
// alone changed are resized, those whose options or sockets changed are
// reloaded gracefully (new workers first) with the new options, and
// unchanged ones are not touched (same pids). It returns when done; a
// watcher whose reload failed (its new workers could not start, so its old
// ones kept running) makes it return an error naming it.
func (a *Arbiter) Reload(ctx context.Context, cfg *config.Config) error {
	return a.do(ctx, func(ctx context.Context) error {
		if a.reloads == nil {
			return a.apply(ctx, cfg)
		}
		a.reloads.ReloadBegin()
		err := a.apply(ctx, cfg)
		a.reloads.ReloadEnd(err)
		return err
	})
}

// ReloadObserver is told about reloads of the configuration, whoever asked
// for them (reloadconfig, SIGHUP, the console): a service manager wants to
// know that the arbiter is busy reloading (sd_notify's RELOADING=1) and
// when it is done. Both methods are called on the goroutine running the
// reload, in pairs, one reload at a time, only for a reload that runs (not
// for one refused while queued); they must return at once.
type ReloadObserver interface {
	ReloadBegin()
	// ReloadEnd gets what Reload returns.
	ReloadEnd(err error)
}

// circusKept returns cfg with the [circus] section of old, but for who may
// do what. Circus restarts every watcher for a change there, and again on
// every later reload (its bug). Its endpoints are bound at start, so the
// section in effect stays the one the arbiter started with, and
// globaloptions keeps telling the truth; but the access keys (package
// access) apply at once: a user removed from control_users must not keep
// the rights until a restart.
func (a *Arbiter) circusKept(old, cfg *config.Config) *config.Config {
	c := *cfg
	c.Circus = old.Circus.WithAccessOf(cfg.Circus)
	if !reflect.DeepEqual(c.Circus, cfg.Circus) {
		a.log.Warn("changes in [circus] take effect at the next start of the arbiter, but for who may do what; watchers are not restarted for them")
	}
	return &c
}

func (a *Arbiter) apply(ctx context.Context, cfg *config.Config) error {
	old := a.snap.Load()
	d := config.Compare(old.cfg, cfg)
	if d.CircusChanged {
		cfg = a.circusKept(old.cfg, cfg)
	}
	socks, current, moved, users, err := a.rebind(cfg, old)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	// Log files are opened next, before anything stops, so that one that
	// cannot be opened fails the reload with nothing changed.
	existing := map[string]*Watcher{}
	for _, w := range old.watchers {
		existing[strings.ToLower(w.name)] = w
	}
	streams := map[*Watcher]streamChange{}
	created, err := a.newWatchers(cfg, socks, existing)
	for _, nc := range cfg.Watchers {
		if err != nil {
			break
		}
		w := existing[strings.ToLower(nc.Name)]
		if w == nil || reflect.DeepEqual(w.spec, nc) {
			continue
		}
		streams[w], err = a.openChanged(w, nc, cfg)
	}
	if err != nil {
		for _, c := range streams {
			c.discard()
		}
		for _, w := range created {
			if existing[strings.ToLower(w.name)] != w {
				w.out.Close(0)
			}
		}
		for _, s := range socks {
			if !slices.Contains(current, s) {
				s.Close()
			}
		}
		if len(moved) > 0 {
			a.restoreMoved(moved, users)
		}
		return fmt.Errorf("reload: %w", err)
	}
	keep, gone, runtime, changes := diffWatchers(old.watchers, cfg, socks)
	a.stopWatchers(gone)
	for _, w := range gone {
		close(w.quit)
		<-w.done
		a.dropCgroup(w, false)
		a.wg.Go(func() { w.out.Close(outputGrace) })
	}
	ws := append(created, runtime...)
	sortWatchers(ws)
	var fresh []*Watcher
	for _, w := range ws {
		if _, kept := keep[strings.ToLower(w.name)]; !kept {
			fresh = append(fresh, w)
			a.wg.Go(w.run)
		}
	}
	a.snap.Store(&snapshot{watchers: ws, sockets: socks, cfg: cfg})
	errs := a.applyChanges(ctx, changes, streams)
	for _, s := range old.sockets {
		if !slices.Contains(socks, s) {
			s.Close()
		}
	}
	// New watchers that cannot start fail the reload's answer too (they
	// were once dropped), though the rest of the configuration is applied.
	errs = append(errs, a.startAll(ctx, fresh, 0, true))
	a.emit(pubsub.Event{Kind: pubsub.ReloadConfig})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	a.log.Info("configuration reloaded", "reloaded", len(changes), "stopped", len(gone), "started", len(fresh),
		"watchers_added", d.WatchersAdded, "watchers_removed", d.WatchersRemoved, "watchers_changed", d.WatchersChanged,
		"sockets_added", d.SocketsAdded, "sockets_removed", d.SocketsRemoved, "sockets_changed", d.SocketsChanged)
	return nil
}

// sameAddress returns the running sockets whose spec changes in cfg while
// their address does not, and the watchers that use them.
func (a *Arbiter) sameAddress(cfg *config.Config, old *snapshot) (moved []*sockets.Socket, users []*Watcher) {
	for _, spec := range cfg.Sockets {
		for _, s := range old.sockets {
			o := s.Spec()
			if o.Name != spec.Name || o == spec {
				continue
			}
			if (spec.Path != "" && spec.Path == o.Path) || (spec.Path == "" && o.Path == "" && spec.Port != 0 &&
				spec.Port == o.Port && spec.Host == o.Host) {
				moved = append(moved, s)
			}
		}
	}
	for _, w := range old.watchers {
		if slices.ContainsFunc(w.specSocks, func(s *sockets.Socket) bool { return slices.Contains(moved, s) }) {
			users = append(users, w)
		}
	}
	return moved, users
}

// restoreMoved binds the old specs of moved again after their new specs
// failed to bind, and starts their watchers on them, so that a failed
// reload leaves things as they were (with new pids).
func (a *Arbiter) restoreMoved(moved []*sockets.Socket, users []*Watcher) {
	old := a.snap.Load()
	socks := slices.Clone(old.sockets)
	for _, m := range moved {
		s, err := sockets.Bind(m.Spec())
		if err != nil {
			a.log.Error("cannot bind the old socket again; its watchers stay stopped", "socket", m.Name(), "err", err)
			return
		}
		socks[slices.Index(socks, m)] = s
	}
	for _, w := range users {
		w.specSocks = watcherSockets(w.spec, socks)
		if err := w.reconfigure(context.Background(), w.spec, w.specSocks); err != nil {
			a.log.Error("restart on the old socket failed", "watcher", w.name, "err", err)
		}
	}
	a.snap.Store(&snapshot{watchers: old.watchers, sockets: socks, cfg: old.cfg})
}

func socketNames(ss []*sockets.Socket) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Name())
	}
	return out
}

func watcherNames(ws []*Watcher) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.name)
	}
	return out
}

// rebind binds the sockets of cfg that changed, reusing the others. A
// changed socket is bound anew before anything stops, so that a failure
// (its new address in use) changes nothing. One changed at the same
// address (a new backlog, say) cannot be: its workers hold the old one.
// Those workers (users) are stopped first, the old socket (moved) closed
// and the new one bound, and they start again on it (Circus, bug #772,
// keeps them on the old socket and answers an error). current is the
// running sockets that stay. On failure the moved sockets are restored.
func (a *Arbiter) rebind(cfg *config.Config, old *snapshot) (socks, current, moved []*sockets.Socket, users []*Watcher, err error) {
	current = old.sockets
	moved, users = a.sameAddress(cfg, old)
	if len(moved) > 0 {
		a.log.Warn("socket changed at the same address: its watchers stop while it is bound again",
			"sockets", socketNames(moved), "watchers", watcherNames(users))
		a.stopWatchers(users)
		for _, s := range moved {
			s.Close()
		}
		current = slices.DeleteFunc(slices.Clone(current), func(s *sockets.Socket) bool { return slices.Contains(moved, s) })
	}
	socks, err = bindSockets(cfg, current)
	// A socket just closed may still be open for a moment in a child
	// between its fork and its exec (spawn.c closes it there), which
	// keeps the address in use: give it that moment.
	for deadline := time.Now().Add(2 * time.Second); err != nil && len(moved) > 0 &&
		strings.Contains(err.Error(), syscall.EADDRINUSE.Error()) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		socks, err = bindSockets(cfg, current)
	}
	if err != nil && len(moved) > 0 {
		a.restoreMoved(moved, users)
	}
	return socks, current, moved, users, err
}

// change is a watcher whose options or sockets a reload changes.
type change struct {
	w          *Watcher
	cfg        *config.Watcher
	socks      []*sockets.Socket
	oldSpec    *config.Watcher
	oldSocks   []*sockets.Socket
	resizeOnly bool
}

// diffWatchers sorts the running watchers against cfg: those kept (by
// lower-cased name), those gone from the file, those added at run time
// (which the file's reload has no say over, unlike Circus's), and those
// that change. It records the new spec of each that changes.
func diffWatchers(running []*Watcher, cfg *config.Config, socks []*sockets.Socket) (keep map[string]*Watcher, gone, runtime []*Watcher, changes []change) {
	keep = map[string]*Watcher{}
	for _, w := range running {
		i := slices.IndexFunc(cfg.Watchers, func(c *config.Watcher) bool { return strings.EqualFold(c.Name, w.name) })
		if i < 0 {
			if w.runtime {
				keep[strings.ToLower(w.name)] = w
				runtime = append(runtime, w)
			} else {
				gone = append(gone, w)
			}
			continue
		}
		w.runtime = false
		keep[strings.ToLower(w.name)] = w
		nc, ns := cfg.Watchers[i], watcherSockets(cfg.Watchers[i], socks)
		if reflect.DeepEqual(w.spec, nc) && slices.Equal(w.specSocks, ns) {
			continue
		}
		changes = append(changes, change{w: w, cfg: nc, socks: ns, oldSpec: w.spec, oldSocks: w.specSocks,
			resizeOnly: liveChange(w.spec, nc) && slices.Equal(w.specSocks, ns)})
		w.spec, w.specSocks = nc, ns
	}
	return keep, gone, runtime, changes
}

// applyChanges reloads the changed watchers gracefully, all at once: each
// one's new workers start before its old ones stop, on the new sockets if
// those changed, so a moved socket is served without a gap. A watcher
// whose reload failed keeps its old spec and streams, so that the next
// reload compares against what runs.
func (a *Arbiter) applyChanges(ctx context.Context, changes []change, streams map[*Watcher]streamChange) []error {
	var wg sync.WaitGroup
	errs := make([]error, len(changes))
	for i, c := range changes {
		wg.Go(func() {
			if c.resizeOnly {
				errs[i] = c.w.setNumProcesses(ctx, c.cfg)
			} else {
				errs[i] = c.w.reconfigure(ctx, c.cfg, c.socks)
			}
			if errs[i] != nil {
				a.log.Error("reload failed", "watcher", c.w.name, "err", errs[i])
			}
		})
	}
	wg.Wait()
	for i, c := range changes {
		if errs[i] != nil {
			c.w.spec, c.w.specSocks = c.oldSpec, c.oldSocks
			streams[c.w].discard()
		} else {
			streams[c.w].apply(c.w)
		}
	}
	return errs
}
