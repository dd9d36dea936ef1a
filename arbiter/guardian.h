// The guardian's interface, shared by guardian.c and guardian.go.

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
	int dirfd;  // the tree's directory in the tracker hierarchy
	int method;
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
};

// The byte the arbiter writes before closing its end: stand down.
#define RM_GUARD_STAND_DOWN 'S'

int rm_guard_start(struct rm_guard *g);
