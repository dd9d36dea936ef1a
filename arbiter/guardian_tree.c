// The guardian's work on the arbiter's cgroup tree (guardian.c has the
// rest): killing every process in it and removing its directories. Called
// in the guardian's child only, under guardian.c's rules: raw system
// calls, nothing allocated, no function it has not called in the parent.

#define _GNU_SOURCE
// As in guardian.c: no loop may become a call to memset or strlen.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guardian.h"

// The kernel's getdents64 record; glibc's struct dirent64 matches it, but
// saying so here keeps the child away from <dirent.h>'s functions.
struct rm_dirent {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};

// d_type values (<dirent.h>'s DT_UNKNOWN and DT_DIR).
enum { RM_DT_UNKNOWN = 0, RM_DT_DIR = 4 };

static void rm_sleep_ms(long ms) {
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 0, &ts, NULL);
}

static int rm_streq(const char *a, const char *b) {
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

// rm_write_at writes the literal val to the file name in dirfd.
#define rm_write_at(dirfd, name, val) rm_write_n(dirfd, name, val, sizeof val - 1)

static int rm_write_n(int dirfd, const char *name, const char *val, int len) {
	int fd = syscall(SYS_openat, dirfd, name, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ok = syscall(SYS_write, fd, val, len) == len;
	syscall(SYS_close, fd);
	return ok ? 0 : -1;
}

// rm_file_has reports whether the first 511 bytes of name contain needle.
static int rm_file_has(int dirfd, const char *name, const char *needle) {
	char buf[512];
	int fd = syscall(SYS_openat, dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
	syscall(SYS_close, fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	for (char *p = buf; *p; p++) {
		const char *a = p, *b = needle;
		while (*b && *a == *b)
			a++, b++;
		if (!*b)
			return 1;
	}
	return 0;
}

// rm_kill_procs sends sig (SIGKILL, or 0 to count) to every pid the
// cgroup.procs file of the cgroup at dirfd lists, and returns how many it
// listed.
static int rm_kill_procs(int dirfd, long self, int sig) {
	int fd = syscall(SYS_openat, dirfd, "cgroup.procs", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[512];
	long pid = 0;
	int n = 0;
	for (;;) {
		long r = syscall(SYS_read, fd, buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		for (long i = 0; i < r; i++) {
			if (buf[i] >= '0' && buf[i] <= '9') {
				pid = pid * 10 + (buf[i] - '0');
				continue;
			}
			if (pid > 0 && pid != self) {
				if (sig)
					syscall(SYS_kill, pid, sig);
				n++;
			}
			pid = 0;
		}
	}
	if (pid > 0 && pid != self) {
		if (sig)
			syscall(SYS_kill, pid, sig);
		n++;
	}
	syscall(SYS_close, fd);
	return n;
}

// rm_kill_tree sends sig (SIGKILL, or 0 to count) to every process in the
// cgroup at dirfd and in those below it, and returns how many there were.
static int rm_kill_tree(int dirfd, long self, int sig, int depth) {
	int n = rm_kill_procs(dirfd, self, sig);
	// The tree is three levels deep (tree, watcher, worker); a bound
	// keeps the stack bounded whatever a worker made below.
	if (depth >= 16)
		return n;
	// A fresh open, so that each walk reads the directory from its start.
	int fd = syscall(SYS_openat, dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return n;
	char buf[2048] __attribute__((aligned(8)));
	for (;;) {
		long r = syscall(SYS_getdents64, fd, buf, sizeof buf);
		if (r <= 0)
			break;
		for (long off = 0; off < r;) {
			struct rm_dirent *d = (struct rm_dirent *)(buf + off);
			off += d->reclen;
			if (d->type != RM_DT_DIR && d->type != RM_DT_UNKNOWN)
				continue;
			if (rm_streq(d->name, ".") || rm_streq(d->name, ".."))
				continue;
			int sub = syscall(SYS_openat, fd, d->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (sub < 0)
				continue;
			n += rm_kill_tree(sub, self, sig, depth + 1);
			syscall(SYS_close, sub);
		}
	}
	syscall(SYS_close, fd);
	return n;
}

// rm_guard_kill empties the tree: at once with cgroup.kill; otherwise
// frozen (where a freezer is), so that nothing forks between the listing
// and the kill, then thawed, since killed tasks die only once thawed; then
// SIGKILL to what is listed until nothing is, for about two seconds.
void rm_guard_kill(const struct rm_guard *g) {
	if (g->method == RM_GUARD_V2_KILL && syscall(SYS_write, g->killfd, "1", 1) == 1)
		return;
	long self = syscall(SYS_getpid);
	int frozen = 0;
	if (g->method == RM_GUARD_V1_FREEZE && rm_write_at(g->dirfd, "freezer.state", "FROZEN") == 0) {
		for (int i = 0; i < 1000 && !rm_file_has(g->dirfd, "freezer.state", "FROZEN"); i++)
			rm_sleep_ms(1);
		frozen = 1;
	} else if (g->method != RM_GUARD_LOOP && g->method != RM_GUARD_V1_FREEZE &&
		   rm_write_at(g->dirfd, "cgroup.freeze", "1") == 0) {
		for (int i = 0; i < 1000 && !rm_file_has(g->dirfd, "cgroup.events", "frozen 1"); i++)
			rm_sleep_ms(1);
		frozen = 2;
	}
	if (frozen) {
		rm_kill_tree(g->dirfd, self, SIGKILL, 0);
		if (frozen == 1)
			rm_write_at(g->dirfd, "freezer.state", "THAWED");
		else
			rm_write_at(g->dirfd, "cgroup.freeze", "0");
	}
	for (int i = 0; i < 2000 && rm_kill_tree(g->dirfd, self, SIGKILL, 0) > 0; i++)
		rm_sleep_ms(1);
}

// rm_rmdir_tree removes the cgroup name in parent and those below it,
// deepest first, and reports whether name is gone. A cgroup is removed only
// once empty: one that is not yet fails with EBUSY.
static int rm_rmdir_tree(int parent, const char *name, int depth) {
	int fd = syscall(SYS_openat, parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0 && depth < 16) {
		char buf[2048] __attribute__((aligned(8)));
		long r;
		// Entries removed while listing may move others under the
		// offset: list again while a pass removed something.
		for (int removed = 1, pass = 0; removed && pass < 8; pass++) {
			removed = 0;
			syscall(SYS_lseek, fd, 0, SEEK_SET);
			while ((r = syscall(SYS_getdents64, fd, buf, sizeof buf)) > 0) {
				for (long off = 0; off < r;) {
					struct rm_dirent *d = (struct rm_dirent *)(buf + off);
					off += d->reclen;
					if ((d->type != RM_DT_DIR && d->type != RM_DT_UNKNOWN) || rm_streq(d->name, ".") ||
					    rm_streq(d->name, ".."))
						continue;
					removed |= rm_rmdir_tree(fd, d->name, depth + 1);
				}
			}
		}
	}
	if (fd >= 0)
		syscall(SYS_close, fd);
	return syscall(SYS_unlinkat, parent, name, AT_REMOVEDIR) == 0 || errno == ENOENT;
}

// rm_guard_remove removes the tree's directories, as the arbiter's shutdown
// would have. The tree empties moments after the kill: its processes may
// be gone from cgroup.procs and still count as there for rmdir while they
// finish exiting; so it tries again every 10 ms, for at most five seconds.
void rm_guard_remove(const struct rm_guard *g) {
	int gone[RM_GUARD_MAX_DIRS] = {0};
	for (int try = 0; try < 500; try++) {
		int left = 0;
		for (int i = 0; i < g->nrm && i < RM_GUARD_MAX_DIRS; i++) {
			if (!gone[i])
				gone[i] = rm_rmdir_tree(g->rmfd[i], g->rmname[i], 0);
			left += !gone[i];
		}
		if (!left)
			return;
		rm_sleep_ms(10);
	}
}
