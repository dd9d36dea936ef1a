// The spawner's interface, shared by spawn.c and spawn_cgo.go.

#include <signal.h>
#include <stdint.h>
#include <fcntl.h>

enum {
	RM_STAGE_CLONE = 1,
	RM_STAGE_SIGMASK,
	RM_STAGE_SETPGID,
	RM_STAGE_FDS,
	RM_STAGE_RLIMIT,
	RM_STAGE_NICE,
	RM_STAGE_CHROOT,
	RM_STAGE_SETGROUPS,
	RM_STAGE_SETGID,
	RM_STAGE_SETUID,
	RM_STAGE_PDEATHSIG,
	RM_STAGE_CHDIR,
	RM_STAGE_EXEC,
	RM_STAGE_CGROUP,
	RM_STAGE_CLONE_CGROUP, // clone3 refused the v2 cgroup (no child)
	RM_STAGE_GUARD,        // the record to the guardian (guardian.h)
};

struct rm_rlimit {
	int resource;
	uint64_t value;
};

struct rm_spawn {
	// In.
	const char *path;
	char *const *argv;
	char *const *envp;
	char *listen_pid; // 21 bytes inside an env string, or NULL
	int *fds;         // fds[i] becomes fd i; -1: closed
	int nfds;
	const char *dir;    // or NULL
	const char *chroot; // or NULL
	int umask;          // -1: unchanged
	int set_nice;
	int nice;
	const struct rm_rlimit *rlimits;
	int nrlimits;
	int set_groups;
	const uint32_t *groups;
	int ngroups;
	int set_creds;
	uint32_t uid, gid;
	int pdeathsig;
	int ppid;
	// The write end of the guardian's pipe (a descriptor of its own,
	// close-on-exec), to which the child writes its own pid before
	// anything else; -1: no guardian.
	int guardfd;
	// cgroup.procs files to write "0" to, except at cgroup_clone: the v2
	// cgroup's directory, which the child is created in.
	const int *cgroup_fds;
	int ncgroup_fds;
	int cgroup_clone; // index into cgroup_fds, or -1
	int no_clone3;    // tests: take the fallback, clone() and a write
	// Out.
	int pidfd;
	int err;
	int stage;
	int cgroup_failed; // index into cgroup_fds, with RM_STAGE_*CGROUP
	// Set when clone3 created the child in the cgroup at cgroup_clone;
	// the child reads it, to skip the write that would move it there.
	int in_cgroup;
	// Scratch.
	sigset_t oldmask;
};

int rm_spawn_run(struct rm_spawn *s);
