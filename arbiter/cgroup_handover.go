package arbiter

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/ringmaster-dev/ringmaster/cgroups"
	"github.com/ringmaster-dev/ringmaster/config"
)

// The cgroups across an in-place upgrade: the old image describes its tree
// and each watcher's cgroups (cgroupsOut), the new one adopts them
// (startCgroupsFrom, then attachCgroupFrom per watcher) instead of making
// them, so that the workers stay in their cgroups under the same limits,
// and a stop still kills what they started. The tree's locks cross the
// exec as inherited fds (cgroups.Tree.Handover says why); nothing else is
// kept open, since the rest is reopened by path when used. The host's
// layout (hostCgroups) is read again by the new image: it is the same
// process, in the same cgroups.

// cgroupState is an arbiter's cgroups as an in-place upgrade carries them
// across the exec.
type cgroupState struct {
	// Info is what [Arbiter.Cgroups] says, Reason included when there is
	// no tree.
	Info CgroupInfo `json:"info"`
	// Tree is the arbiter's tree, its lock fds inherited; nil when the
	// workers run without cgroups.
	Tree *cgroups.TreeState `json:"tree,omitempty"`
	// Seq is the tree's number among the arbiters of this process, part of
	// its name: the new image numbers its next trees after it.
	Seq int `json:"seq,omitempty"`
	// Watchers are each watcher's cgroups, by watcher name.
	Watchers map[string]watcherCgroupState `json:"watchers,omitempty"`
}

// watcherCgroupState is one watcher's cgroups (watcherCgroup) as an
// in-place upgrade carries them.
type watcherCgroupState struct {
	// Dir is the watcher's cgroup directory name, kept as made: a new
	// version may name cgroups otherwise.
	Dir string `json:"dir"`
	// Group says the watcher's cgroup is set up, with Applied.
	Group   bool          `json:"group,omitempty"`
	Applied config.Cgroup `json:"applied,omitzero"`
	// Workers are, with cgroup = worker, each worker's cgroup by pid: its
	// path in the tree ("web/wid1-4"). Dead are killed workers' cgroups
	// not removed yet.
	Workers map[int]string `json:"workers,omitempty"`
	Dead    []string       `json:"dead,omitempty"`
	// Seq numbers the workers' cgroups: the next one made is Seq+1.
	Seq int `json:"seq,omitempty"`
	// OOMs and WorkerOOMs are the OOM kills reported so far, so that the
	// new image reports only those that come after.
	OOMs       uint64         `json:"ooms,omitempty"`
	WorkerOOMs map[int]uint64 `json:"worker_ooms,omitempty"`
	// GroupKilled and Reported are the pids of watcherCgroup's fields of
	// those names: a stop under way when the upgrade came does not report
	// a kill twice.
	GroupKilled []int `json:"group_killed,omitempty"`
	Reported    []int `json:"reported,omitempty"`
	// Killed: the watcher's cgroup had a cgroup.kill and is joined
	// without clone3.
	Killed bool `json:"killed,omitempty"`
}

// cgroupsOut describes the arbiter's cgroups for an in-place upgrade and
// keeps the tree's lock fds across the exec (close-on-exec cleared). It is
// called while every watcher loop is frozen, whose cgroups it reads. On
// error nothing has changed.
func (a *Arbiter) cgroupsOut() (*cgroupState, error) {
	st := &cgroupState{Info: a.cg.info, Seq: a.cg.seq, Watchers: map[string]watcherCgroupState{}}
	for _, w := range a.Watchers() {
		if w.cg != nil {
			st.Watchers[w.name] = w.cg.out()
		}
	}
	if a.cg.tree != nil {
		ts, err := a.cg.tree.Handover()
		if err != nil {
			return nil, err
		}
		st.Tree = &ts
	}
	return st, nil
}

// cgroupsBack undoes cgroupsOut after an exec that failed: the tree's lock
// fds are close-on-exec again, so that no worker inherits them.
func (a *Arbiter) cgroupsBack() {
	if a.cg.tree != nil {
		a.cg.tree.HandoverBack()
	}
}

// startCgroupsFrom is startCgroups in the new image of an in-place
// upgrade: it adopts the tree that st describes, with its locks, and makes
// none; no tree is swept. An error says the tree could not be adopted
// (cgroups.AdoptTree says why), and leaves the arbiter without cgroups,
// the inherited lock fds open as they came: the caller goes back to the
// old binary with the same state.
func (a *Arbiter) startCgroupsFrom(st *cgroupState) error {
	a.cg.info, a.cg.adopting = st.Info, true
	if st.Tree == nil {
		a.log.Info("cgroups: none, as before the upgrade", "reason", st.Info.Reason)
		return nil
	}
	fail := func(err error) error {
		a.cg.info = CgroupInfo{Host: st.Info.Host, Reason: err.Error()}
		return err
	}
	host, err := hostCgroups()
	if err != nil {
		return fail(fmt.Errorf("cgroups unreadable after the upgrade: %w", err))
	}
	tree, err := cgroups.AdoptTree(host, *st.Tree)
	if err != nil {
		return fail(err)
	}
	a.cg.tree, a.cg.seq = tree, st.Seq
	for cur := cgroupTrees.Load(); cur < int32(st.Seq) && !cgroupTrees.CompareAndSwap(cur, int32(st.Seq)); {
		cur = cgroupTrees.Load()
	}
	a.log.Info("cgroups adopted", "host", st.Info.Host, "dirs", tree.Dirs(), "kill", tree.KillMethod())
	return nil
}

// out describes c for an in-place upgrade. It is called on the watcher's
// loop, or while the loop is frozen.
func (c *watcherCgroup) out() watcherCgroupState {
	st := watcherCgroupState{Dir: c.name, Seq: c.seq, OOMs: c.ooms, Killed: c.killed,
		GroupKilled: slices.Sorted(maps.Keys(c.groupKilled)), Reported: slices.Sorted(maps.Keys(c.reported))}
	if c.group != nil {
		st.Group, st.Applied = true, c.applied
	}
	if len(c.workers) > 0 {
		st.Workers = map[int]string{}
		for pid, g := range c.workers {
			st.Workers[pid] = g.Path()
		}
	}
	for _, g := range c.dead {
		st.Dead = append(st.Dead, g.Path())
	}
	if len(c.workerOOMs) > 0 {
		st.WorkerOOMs = maps.Clone(c.workerOOMs)
	}
	return st
}

// attachCgroupFrom is attachCgroup in the new image of an in-place
// upgrade: w's cgroups exist, with its workers (pids, those adopted) in
// them, and w takes them over as they are, limits included. The cgroup of
// a worker not adopted is killed and removed by the sweeps of dead ones; a
// cgroup that went missing is said in the log and made anew when needed.
// It runs before w's loop starts, after startCgroupsFrom, which it needs
// the tree of.
func (a *Arbiter) attachCgroupFrom(w *Watcher, st watcherCgroupState, pids []int) {
	if !a.cg.adopting {
		panic("BUG: arbiter: attachCgroupFrom before startCgroupsFrom")
	}
	a.attachCgroup(w)
	c := w.cg
	c.name, c.seq, c.ooms, c.killed = st.Dir, st.Seq, st.OOMs, st.Killed
	c.workerOOMs = maps.Clone(st.WorkerOOMs)
	c.groupKilled = pidSet(st.GroupKilled)
	c.reported = pidSet(st.Reported)
	tree := a.cg.tree
	if tree == nil {
		return
	}
	var missing []error
	if st.Group {
		own := cgroupLimits(st.Applied)
		if st.Applied.Mode == config.CgroupWorker {
			own = cgroups.Limits{} // each worker's cgroup has them
		}
		g, err := tree.AdoptGroup(c.name, own)
		if err == nil {
			c.group, c.applied = g, st.Applied
		}
		missing = append(missing, err)
	}
	live := pidSet(pids)
	for _, pid := range slices.Sorted(maps.Keys(st.Workers)) {
		g, err := tree.AdoptGroup(st.Workers[pid], cgroups.Limits{})
		switch {
		case err != nil:
			missing = append(missing, err)
		case live[pid]:
			c.workers[pid] = g
		default:
			c.bury(g)
		}
	}
	for _, rel := range st.Dead {
		c.bury(tree.Group(rel))
	}
	if err := errors.Join(missing...); err != nil {
		w.log.Warn("cgroups not found after the upgrade; made anew at the next spawn", "err", err)
	}
}

// pidSet makes a set of pids, nil when there are none.
func pidSet(pids []int) map[int]bool {
	if len(pids) == 0 {
		return nil
	}
	m := make(map[int]bool, len(pids))
	for _, pid := range pids {
		m[pid] = true
	}
	return m
}
