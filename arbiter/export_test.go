package arbiter

// HoldExits makes the reaper call f with the pid of every child it reaps
// for an owner, after reaping it and before routing its exit, until
// restore is called. f runs on the reaper goroutine: while it blocks,
// nothing is reaped.
func HoldExits(f func(pid int)) (restore func()) {
	exitHook.Store(&f)
	return func() { exitHook.Store(nil) }
}

// HoldForks makes every spawn call f with its child's pid once the fork
// has returned, before the child is registered with the reaper, until
// restore is called. f runs on the spawner thread.
func HoldForks(f func(pid int)) (restore func()) {
	forkedHook.Store(&f)
	return func() { forkedHook.Store(nil) }
}

// HoldRegistration makes every spawn call f with its child's pid after
// the spawn has returned and before the child is registered with the
// reaper, until restore is called. f runs on the spawner thread.
func HoldRegistration(f func(pid int)) (restore func()) {
	registerHook.Store(&f)
	return func() { registerHook.Store(nil) }
}

// SpawnWithoutClone3 makes a's spawns take the spawner's fallback: clone()
// and a write to the v2 cgroup's cgroup.procs in the child, as on a kernel
// without clone3 or CLONE_INTO_CGROUP. Call it between New and Run.
func SpawnWithoutClone3(a *Arbiter) { a.cg.noClone3 = true }

// FailGuardian makes every guardian fail to start with err, until restore
// is called. Tests using it must not be parallel.
func FailGuardian(err error) (restore func()) {
	guardianFail.Store(&err)
	return func() { guardianFail.Store(nil) }
}

// Guarded reports whether a guardian runs and guards every live child of
// a (an upgrade in place may go ahead). Call it once a has started.
func Guarded(a *Arbiter) bool { return a.guarded() }
