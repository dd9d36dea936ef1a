// The guardian: a small process that outlives a SIGKILLed arbiter just long
// enough to kill what it started: each worker (and hook, and health.cmd
// run) and its process group, and the arbiter's cgroup tree where it has
// one, so that nothing the arbiter started (the daemons its workers detach
// included, where there is a tree) keeps running and holding the sockets.
// It replaces the parent-death signal, which an exec of the arbiter would
// fire (guardian.go).
//
// It is a real fork (no CLONE_VM: it must survive the arbiter's memory),
// started from here rather than exec'd because there is nothing to exec: a
// helper program on disk may be missing (a distroless container) and a
// re-exec of the arbiter would cost a Go runtime per arbiter. Its child
// runs on a stack of its own and makes raw system calls only (glibc's
// syscall() and sigaction(), bound in the parent first, so that no lazy
// binding runs in the child), allocates nothing, and never returns to Go.
//
// Forking a Go process copies its page tables, and every page the arbiter
// writes afterwards would be copied once more and kept by the guardian
// until it exits: in time, a second arbiter's worth of memory. So for the
// length of the clone the parent marks its anonymous private writable
// mappings MADV_DONTFORK (all but the child's stack and the forking
// thread's own stack and TLS, which the child runs with), and unmarks them
// after: the child gets code, read-only data and a few pages. Nothing else
// in this process forks without CLONE_VM (Go's own forkExec and spawn.c
// share the memory until exec, and the Go side holds syscall.ForkLock
// across the marks for the architectures where Go's does not), so the marks
// change nothing for anyone. The set of workers, a bit per possible pid
// (512 KiB of address space), shares the mapping of the child's stack:
// the parent fills in the workers it knows already (a replacement's), and
// the child gets the pages that holds, and touches others only as
// workers come.
// Measured (BenchmarkGuardianStart, on this project's loaded 2-core VM):
// without the marks the fork took 9 ms and left the guardian 2.9 MB of the
// test binary's anonymous memory copy-on-write (266 MB beside a 256 MiB
// heap), every page of which the arbiter's next write to it duplicates;
// with them, 0.4-3 ms for mark, clone and unmark, and 160-220 kB, whatever
// the heap.
//
// The child sets every signal to be ignored (it also keeps the mask the
// parent blocked all signals with): a Ctrl-C, a hangup, or a SIGTERM sent
// to every process of a service reaches the arbiter, never its guardian. It leaves
// the arbiter's session and process group (setsid), so that a signal or a
// SIGKILL sent to the arbiter's group does not take the guardian with it.
// It closes every fd but the read end of the arbiter's pipe and, where
// there is a tree, the tree's cgroup.kill and directory, the directory
// holding the tree in each hierarchy, and the fds holding the tree's locks; in particular the pipe's
// write end, which it inherited, and the arbiter's stdout and stderr (a
// parent waiting for the arbiter's output to close must not wait for the
// guardian). The locks (flock, which belongs to the open file the fork
// shares) prove to other arbiters that the tree has an owner: the guardian
// keeps them until it exits, so that no sweep starts on the tree while it
// still kills and removes it. Then it reads the pipe's records
// (guardian.h), as they come, so that a child registering itself is never
// held up for long:
//
//   - RM_GUARD_ADD and RM_GUARD_REMOVE keep its set of workers;
//   - RM_GUARD_STAND_DOWN: the arbiter shut down cleanly (having stopped
//     its workers, emptied and removed the tree itself); the guardian
//     exits 0;
//   - end of file without it: every holder of the write end is gone, which
//     is the arbiter dying (its spawns' children hold a copy only until
//     they have registered); the guardian sends SIGKILL to the process
//     group of each worker in its set and to the worker, kills the tree,
//     removes its directories once it is empty (waiting at most five
//     seconds; what is left, the next arbiter's sweep removes), and exits
//     1. A worker that died just before the arbiter was not removed from
//     the set, and init may have reaped it since: its pid is killed all
//     the same, which in that moment would take a new process of the same
//     pid only if the pids had wrapped around in between.

#define _GNU_SOURCE
// The child may call nothing it has not called in the parent (see above):
// a loop the compiler turns into a call to strlen or memset would bind a
// symbol there, in memory the child does not have.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-tree-loop-distribute-patterns")
#endif
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guardian.h"

#define RM_GUARD_STACK (128 * 1024)

// rm_close_others closes every fd but the n in keep (which it sorts).
static void rm_close_others(int *keep, int n) {
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (keep[j] < keep[i]) {
				int t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	unsigned int lo = 0;
	for (int i = 0; i <= n; i++) {
		if (i < n && (keep[i] < 0 || (unsigned int)keep[i] < lo))
			continue; // none, or a duplicate
		unsigned int hi = i < n ? (unsigned int)keep[i] : ~0U;
		if (hi > lo && syscall(SYS_close_range, lo, hi - 1, 0) != 0) {
			// Before Linux 5.9.
			for (unsigned int fd = lo; fd < hi && fd < 65536; fd++)
				syscall(SYS_close, fd);
		}
		if (i < n)
			lo = hi + 1;
	}
}

// rm_guard_read applies the arbiter's records (guardian.h) to the set of
// workers until end of file, and returns then; it exits on a stand-down.
static void rm_guard_read(const struct rm_guard *g) {
	struct rm_guard_rec recs[512];
	char *buf = (char *)recs;
	long have = 0;
	for (;;) {
		long n = syscall(SYS_read, g->rfd, buf + have, sizeof recs - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			// Not seen on a pipe. Killing the workers of an arbiter
			// that may well be alive would be the worse mistake.
			syscall(SYS_exit_group, 2);
		if (n == 0)
			return;
		have += n;
		long i = 0;
		for (; i + (long)sizeof recs[0] <= have; i += sizeof recs[0]) {
			const struct rm_guard_rec *r = (const struct rm_guard_rec *)(buf + i);
			if (r->op == RM_GUARD_STAND_DOWN)
				syscall(SYS_exit_group, 0);
			if (r->pid <= 0 || r->pid >= RM_GUARD_PID_LIMIT)
				continue;
			uint64_t bit = 1ULL << (r->pid % 64);
			if (r->op == RM_GUARD_ADD)
				g->bits[r->pid / 64] |= bit;
			else if (r->op == RM_GUARD_REMOVE)
				g->bits[r->pid / 64] &= ~bit;
		}
		// Writes are whole records, but a read need not end on one.
		for (long j = 0; i + j < have; j++)
			buf[j] = buf[i + j];
		have -= i;
	}
}

// rm_guard_kill_pids sends SIGKILL to the process group of every worker
// in bits, and to the worker itself (which may have left its group).
static void rm_guard_kill_pids(const uint64_t *bits) {
	for (long w = 0; w < RM_GUARD_PID_LIMIT / 64; w++) {
		uint64_t b = bits[w];
		for (int i = 0; b != 0 && i < 64; i++) {
			if (!(b & (1ULL << i)))
				continue;
			long pid = w * 64 + i;
			syscall(SYS_kill, -pid, SIGKILL);
			syscall(SYS_kill, pid, SIGKILL);
		}
	}
}

static int rm_guard_child(void *arg) {
	// On the child's own stack, where rm_guard_start copied it.
	const struct rm_guard *g = arg;

	struct sigaction ign = {0};
	ign.sa_handler = SIG_IGN;
	for (int sig = 1; sig < _NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &ign, NULL); // fails, harmlessly, for glibc's own
	}
	syscall(SYS_setsid);
	int keep[3 + 2 * RM_GUARD_MAX_DIRS];
	int nkeep = 0;
	keep[nkeep++] = g->rfd;
	keep[nkeep++] = g->killfd;
	keep[nkeep++] = g->dirfd;
	for (int i = 0; i < g->nrm && i < RM_GUARD_MAX_DIRS; i++)
		keep[nkeep++] = g->rmfd[i];
	for (int i = 0; i < g->nlock && i < RM_GUARD_MAX_DIRS; i++)
		keep[nkeep++] = g->lockfd[i];
	rm_close_others(keep, nkeep);
	// Hold no directory busy (an unmount, a test's temporary directory).
	syscall(SYS_chdir, "/");
	// For ps and top: it is not the arbiter.
	syscall(SYS_prctl, PR_SET_NAME, "arbiter-guard", 0, 0, 0);

	rm_guard_read(g);
	rm_guard_kill_pids(g->bits);
	if (g->dirfd >= 0) {
		rm_guard_kill(g);
		rm_guard_remove(g);
	}
	syscall(SYS_exit_group, 1);
	return 1;
}

// rm_mark sets advice on the mappings rm_guard_start gives the child none
// of, or with undo unsets it on those recorded; it returns how many.
struct rm_range {
	uintptr_t lo, hi;
};

static int rm_in(uintptr_t a, uintptr_t lo, uintptr_t hi) { return a >= lo && a < hi; }

static long rm_hex(const char **p) {
	long v = 0;
	for (;; (*p)++) {
		char c = **p;
		if (c >= '0' && c <= '9')
			v = v * 16 + (c - '0');
		else if (c >= 'a' && c <= 'f')
			v = v * 16 + (c - 'a' + 10);
		else
			return v;
	}
}

// rm_mark_line records and marks the mapping of one line of
// /proc/self/maps ("lo-hi perms offset dev inode [path]") if it is
// anonymous, private, writable and holds none of keep.
static void rm_mark_line(const char *p, struct rm_range *rs, int *n, int max, const uintptr_t keep[3]) {
	uintptr_t lo = rm_hex(&p);
	if (*p++ != '-')
		return;
	uintptr_t hi = rm_hex(&p);
	if (*p++ != ' ' || p[1] != 'w' || p[3] != 'p')
		return;
	// Three fields on (offset, device): the inode.
	for (int f = 0; f < 3; f++) {
		while (*p && *p != ' ')
			p++;
		while (*p == ' ')
			p++;
	}
	if (*p != '0' || (p[1] != ' ' && p[1] != '\0'))
		return; // a file's
	p++;
	while (*p == ' ')
		p++;
	if (*p != '\0')
		return; // [stack], [heap], [vvar]...
	for (int i = 0; i < 3; i++)
		if (rm_in(keep[i], lo, hi))
			return;
	if (*n < max && madvise((void *)lo, hi - lo, MADV_DONTFORK) == 0)
		rs[(*n)++] = (struct rm_range){lo, hi};
}

static int rm_mark(struct rm_range *rs, int max, const uintptr_t keep[3]) {
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	char buf[4096];
	int have = 0, n = 0;
	for (;;) {
		long r = read(fd, buf + have, sizeof buf - 1 - have);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		have += r;
		buf[have] = '\0';
		char *line = buf, *nl;
		while ((nl = memchr(line, '\n', buf + have - line)) != NULL) {
			*nl = '\0';
			rm_mark_line(line, rs, &n, max, keep);
			line = nl + 1;
		}
		have -= line - buf;
		memmove(buf, line, have);
		if (have == sizeof buf - 1)
			have = 0; // a line longer than the buffer: not one of ours
	}
	close(fd);
	return n;
}

int rm_guard_start(struct rm_guard *g) {
	g->err = 0;
	// Bind, here, what the child calls through the PLT.
	struct sigaction sa;
	sigaction(SIGCHLD, NULL, &sa);
	syscall(SYS_getpid);

	// One mapping holds the child's set of workers, a bit per possible
	// pid (512 KiB of address space, of which only the pages holding
	// workers' bits are ever touched), then its stack: the set is
	// filled here, and the child gets a copy of what was touched.
	const size_t bitmap = RM_GUARD_PID_LIMIT / 8;
	char *map = mmap(NULL, bitmap + RM_GUARD_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (map == MAP_FAILED) {
		g->err = errno;
		return -1;
	}
	char *stack = map + bitmap;
	g->bits = (uint64_t *)map;
	for (int i = 0; i < g->npids; i++)
		if (g->pids[i] > 0 && g->pids[i] < RM_GUARD_PID_LIMIT)
			g->bits[g->pids[i] / 64] |= 1ULL << (g->pids[i] % 64);
	// The child's copy of its arguments lives at the top of its stack:
	// g itself is in memory the child does not get.
	struct rm_guard *arg = (struct rm_guard *)(stack + RM_GUARD_STACK - 64 - sizeof *g);
	*arg = *g;
	arg->pids = NULL;

	int max = 4096;
	struct rm_range *rs = malloc(max * sizeof *rs);
	int local;
	uintptr_t keep[3] = {(uintptr_t)map, (uintptr_t)&local, (uintptr_t)&errno};
	int n = rs != NULL ? rm_mark(rs, max, keep) : 0;

	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int pid = clone(rm_guard_child, (char *)arg - 64, SIGCHLD, arg);
	if (pid < 0)
		g->err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);

	for (int i = 0; i < n; i++)
		madvise((void *)rs[i].lo, rs[i].hi - rs[i].lo, MADV_DOFORK);
	free(rs);
	munmap(map, bitmap + RM_GUARD_STACK);
	g->bits = NULL;
	return pid;
}
