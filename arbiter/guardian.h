// The guardian's interface, shared by guardian.c and guardian.go.

#include <stdint.h>

// How the guardian empties the tree when the arbiter dies.
enum {
	RM_GUARD_V2_KILL = 1, // write "1" to cgroup.kill (Linux 5.14)
	RM_GUARD_V2_FREEZE,   // cgroup.freeze, SIGKILL to each process, thaw
	RM_GUARD_V1_FREEZE,   // freezer.state, SIGKILL to each process, thaw
	RM_GUARD_LOOP,        // SIGKILL to each process until none is left
};

#define RM_GUARD_MAX_DIRS 8

struct rm_guard {
	// In.
	int rfd;    // the read end of the arbiter's pipe
	int killfd; // the tree's cgroup.kill, with RM_GUARD_V2_KILL; else -1
	int dirfd;  // the tree's directory in the tracker hierarchy; -1: no tree
	int method; // 0 with no tree
	// The workers the guardian knows from the start (a replacement's: the
	// arbiter's live workers), npids of them.
	const int *pids;
	int npids;
	// The tree's directories, one per hierarchy, removed once the tree
	// is empty: each one's parent directory, and its name there.
	int nrm;
	int rmfd[RM_GUARD_MAX_DIRS];
	char rmname[RM_GUARD_MAX_DIRS][64];
	// The fds holding the tree's locks (cgroups/own.go), kept open, and
	// so the tree locked against other arbiters' sweeps, until the
	// guardian exits: after its kill, not before.
	int nlock;
	int lockfd[RM_GUARD_MAX_DIRS];
	// Out.
	int err;
	// Private: the child's set of workers, a bit per pid.
	uint64_t *bits;
};

// The pipe's protocol: fixed-size records, each written by one write(2)
// (atomic, being under PIPE_BUF, so that records of several writers never
// interleave), read in any number at a time:
//
//   - RM_GUARD_ADD pid: a worker, written by the child itself before it
//     execs (spawn.c); the guardian kills its process group and it when
//     the arbiter dies;
//   - RM_GUARD_REMOVE pid: that worker has exited and is about to be
//     reaped (written by the reaper while it is a zombie, so that its pid
//     is not yet anyone else's): forget it;
//   - RM_GUARD_STAND_DOWN (pid 0): the arbiter is shutting down cleanly;
//     exit 0, killing nothing.
//
// End of file without a stand-down is the arbiter's death.
struct rm_guard_rec {
	int32_t op;
	int32_t pid;
};

enum {
	RM_GUARD_ADD = 'A',
	RM_GUARD_REMOVE = 'R',
	RM_GUARD_STAND_DOWN = 'S',
};

// pids at or above this are ignored: Linux's PID_MAX_LIMIT on 64-bit
// machines, the most /proc/sys/kernel/pid_max can ever be raised to
// (pid_max itself may be raised while the guardian runs).
#define RM_GUARD_PID_LIMIT (1 << 22)

int rm_guard_start(struct rm_guard *g);

// guardian_tree.c, for the guardian's child: kill every process in the
// tree, then remove its directories. Hidden, so that the child's calls
// to them are direct, through no PLT entry bound at run time.
void rm_guard_kill(const struct rm_guard *g) __attribute__((visibility("hidden")));
void rm_guard_remove(const struct rm_guard *g) __attribute__((visibility("hidden")));
