package arbiter

// SpawnWithoutClone3 makes a's spawns take the spawner's fallback: clone()
// and a write to the v2 cgroup's cgroup.procs in the child, as on a kernel
// without clone3 or CLONE_INTO_CGROUP. Call it between New and Run.
func SpawnWithoutClone3(a *Arbiter) { a.cg.noClone3 = true }
