// Package cgroups gives a supervisor the Linux control groups the host
// lets it use, without assuming any: it finds them, makes a cgroup per
// watcher (or per worker) under the process's own, sets memory, pids and
// CPU limits where a controller for them is writable, kills everything in a
// cgroup, and removes what it made.
//
// # Detection
//
// [Detect] reads /proc/self/cgroup and /proc/self/mountinfo: which
// hierarchies exist (the v2 unified one, v1 ones, or both, as on hybrid
// hosts), which controllers each carries, where the process's own cgroup
// is in each, and whether it is mounted writable. Paths are always derived
// from those two files, never assumed, because hosts differ: containers
// mount a hierarchy's subtree as its root, and a hybrid host may give v2
// nothing but tracking while memory and pids live on v1.
//
// # Trees and groups
//
// [NewTree] makes one directory per supervisor, PREFIX-PID-nsINO (PID is
// its pid in its own pid namespace, INO that namespace's inode number, as
// /proc/self/ns/pid shows it), under the process's own cgroup in each
// hierarchy it needs: the tracker (v2 if it is
// writable, else v1 freezer, else any writable v1 one), which every worker
// joins and through which a cgroup is killed and watched for emptiness,
// and the carrier of each controller (v2 where the controller is enabled
// for the tree, else its v1 hierarchy). A [Group] is a path inside the tree,
// "web" or "web/wid1-4"; it exists in the tracker and in the carriers of
// the limits it was given, and a process joins it between fork and exec,
// so that nothing it forks is ever outside, through what [Group.Open]
// returns: the v2 cgroup's directory, in which clone3's CLONE_INTO_CGROUP
// creates the process (no migration, so no cost), and for each v1
// hierarchy a cgroup.procs file to write "0" to (a migration, which costs
// milliseconds after a quiet moment: joined only for a limit that lives
// there, or on a host without v2, where v1 is what tracks).
//
// On v2 the kernel gives a non-root cgroup's children controllers only
// while it holds no process. A supervisor alone in its cgroup (a systemd
// service with Delegate=yes, a container's init) therefore moves itself
// into a leaf, PREFIX-PID-nsINO-supervisor, beside its tree, when it first needs
// a controller; one that shares its cgroup with other processes does not,
// and the controller is reported unusable, with the reason.
//
// # Ownership
//
// A supervisor that dies leaves its tree, and what still runs in it,
// behind; the next one to make a tree beside it removes it. But trees of
// supervisors in other pid namespaces (containers, or a host's arbiter
// seen from one) sit side by side under one cgroup as well, and a pid
// proves nothing across pid namespaces: the owner's pid may not exist
// here while the owner lives, or exist here as another process. So a
// supervisor holds flock(LOCK_EX) on its tree's directory in each
// hierarchy (and on its leaf) for as long as it lives. [NewTree] sweeps a
// tree only once it has taken that lock itself, without waiting: the
// kernel lets a lock go only when every fd on it is closed, so taking it
// proves the owner gone, and the sweeper holds it while it kills and
// removes, so that two never sweep one tree. A locked tree is left alone
// and reported by [Tree.Unswept], with the reason. The lock's fds
// ([Tree.LockFDs]) are close-on-exec: no worker keeps a tree locked, but
// a process forked without exec may, as the arbiter's guardian does until
// it has killed the tree of its dead arbiter.
//
// Trees named by older versions, PREFIX-PID[-SEQ] and PREFIX-PID-supervisor,
// were never locked. One of them is swept only where the owner's death can
// be proven without the name's namespace: from the initial pid namespace,
// which sees every process, when no process has that pid in its own
// namespace. From a pid namespace of its own, a supervisor leaves them
// all alone.
//
// # Upgrade in place
//
// An arbiter that executes its new binary in place (same pid, same
// children) keeps its tree: [Tree.Handover] clears the close-on-exec flag
// of the lock fds (and of the leaf's) and describes the tree, and the new
// image's [AdoptTree] takes it from that description, making and sweeping
// nothing. The locks are held throughout by the same open files, so a
// sweep beside the tree never finds it free; AdoptTree checks that each
// directory is the one handed over (its device and inode) and that its
// inherited fd is open on it and holds its lock, and marks the fds
// close-on-exec again. [Tree.AdoptGroup] takes a group as it was set up,
// writing nothing. [Tree.HandoverBack] is the way back from an exec that
// failed.
//
// # Killing
//
// [Group.Kill] empties a cgroup with cgroup.kill on v2 (Linux 5.14); on v1
// it freezes the cgroup, sends SIGKILL to every process in it and thaws it,
// so that no process forks between the listing and the kill; without a
// freezer it sends SIGKILL to what cgroup.procs lists until it lists
// nothing. [Group.Wait] polls until the cgroup is empty, with a deadline.
//
// # Concurrency
//
// A [Host] and a [Tree] are immutable once made and safe to share. A
// [Group] holds no state that changes after [Group.Setup]; its methods
// touch only the kernel's files, and callers serialise the changes to one
// group (the arbiter does it on the watcher's loop).
package cgroups
