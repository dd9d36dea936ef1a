// The spawner. The arbiter forks its workers here rather than through
// os/exec because a worker needs state that os/exec cannot set between fork
// and exec: its umask, rlimits and niceness, a chroot before the
// credentials, and LISTEN_PID, which must be the worker's own pid. Doing it
// in the child of a vfork-style clone, as glibc's posix_spawn and Go's own
// forkExec do, costs one exec per worker; re-executing the arbiter as a shim
// cost a second one (about 6 ms of CPU per worker here).
//
// The child shares the parent's memory until it execs (CLONE_VM|CLONE_VFORK,
// the parent thread waits), so it uses raw system calls only: glibc's
// setuid and friends would try to broadcast to the parent's threads, and
// nothing may allocate. Signals are blocked across the clone so that no Go
// signal handler ever runs in the child; the child resets every handled
// signal to its default before restoring the mask and executing.
//
// A worker joins its cgroups first of all, by writing "0" to the
// cgroup.procs files the parent opened, so nothing it ever forks is outside
// them. clone3's CLONE_INTO_CGROUP (what os/exec's UseCgroupFD uses) would
// do it in the kernel, but it places a child in one v2 cgroup only, while
// memory and pids limits may live on v1 hierarchies (they do on hybrid
// hosts), and clone3 with CLONE_VM would need the stack switch that glibc's
// clone() does for us written by hand. The writes cost nothing measurable:
// 2.8 ms per spawn of /bin/true into four cgroups here, against 2.9 ms
// into none (BenchmarkSpawnCgroup).

#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "spawn.h"

#define RM_STACK_SIZE (256 * 1024)

static int rm_fail(struct rm_spawn *s, int stage) {
	s->err = errno;
	s->stage = stage;
	syscall(SYS_exit_group, 127);
	return 127;
}

// rm_itoa writes n in decimal at buf, NUL-terminated; buf holds 21 bytes.
static void rm_itoa(char *buf, long n) {
	char tmp[21];
	int i = 0;
	do {
		tmp[i++] = (char)('0' + n % 10);
		n /= 10;
	} while (n > 0 && i < 20);
	int j = 0;
	while (i > 0)
		buf[j++] = tmp[--i];
	buf[j] = '\0';
}

static int rm_child(void *arg) {
	struct rm_spawn *s = arg;

	for (int sig = 1; sig < _NSIG; sig++) {
		struct sigaction sa;
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) != 0 || sa.sa_handler == SIG_IGN || sa.sa_handler == SIG_DFL)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	if (syscall(SYS_rt_sigprocmask, SIG_SETMASK, &s->oldmask, NULL, _NSIG / 8) != 0)
		return rm_fail(s, RM_STAGE_SIGMASK);

	// Before the fds are remapped, which may overwrite these, and before
	// the credentials change, after which the write may be refused.
	for (int i = 0; i < s->ncgroup_fds; i++) {
		if (syscall(SYS_write, s->cgroup_fds[i], "0", 1) != 1) {
			s->cgroup_failed = i;
			return rm_fail(s, RM_STAGE_CGROUP);
		}
	}

	if (syscall(SYS_setpgid, 0, 0) != 0)
		return rm_fail(s, RM_STAGE_SETPGID);

	// fds[i] becomes fd i. Sources that a lower dup2 would overwrite are
	// first moved above every fd involved.
	int next = s->nfds;
	for (int i = 0; i < s->nfds; i++)
		if (s->fds[i] >= next)
			next = s->fds[i] + 1;
	for (int i = 0; i < s->nfds; i++) {
		if (s->fds[i] >= 0 && s->fds[i] < i) {
			if (syscall(SYS_dup3, s->fds[i], next, O_CLOEXEC) < 0)
				return rm_fail(s, RM_STAGE_FDS);
			s->fds[i] = next++;
		}
	}
	for (int i = 0; i < s->nfds; i++) {
		if (s->fds[i] < 0) {
			syscall(SYS_close, i);
		} else if (s->fds[i] == i) {
			if (syscall(SYS_fcntl, i, F_SETFD, 0) != 0)
				return rm_fail(s, RM_STAGE_FDS);
		} else if (syscall(SYS_dup3, s->fds[i], i, 0) < 0) {
			return rm_fail(s, RM_STAGE_FDS);
		}
	}

	// Limits and priority before the credentials: raising a hard limit or
	// lowering niceness needs the privileges dropped below.
	for (int i = 0; i < s->nrlimits; i++) {
		struct rlimit rl = {.rlim_cur = s->rlimits[i].value, .rlim_max = s->rlimits[i].value};
		if (syscall(SYS_prlimit64, 0, s->rlimits[i].resource, &rl, NULL) != 0)
			return rm_fail(s, RM_STAGE_RLIMIT);
	}
	if (s->set_nice && syscall(SYS_setpriority, PRIO_PROCESS, 0, s->nice) != 0)
		return rm_fail(s, RM_STAGE_NICE);
	if (s->umask >= 0)
		syscall(SYS_umask, s->umask);
	if (s->chroot != NULL) {
		if (syscall(SYS_chroot, s->chroot) != 0)
			return rm_fail(s, RM_STAGE_CHROOT);
		if (syscall(SYS_chdir, "/") != 0)
			return rm_fail(s, RM_STAGE_CHROOT);
	}
	if (s->set_groups && syscall(SYS_setgroups, s->ngroups, s->groups) != 0)
		return rm_fail(s, RM_STAGE_SETGROUPS);
	if (s->set_creds) {
		if (syscall(SYS_setgid, s->gid) != 0)
			return rm_fail(s, RM_STAGE_SETGID);
		if (syscall(SYS_setuid, s->uid) != 0)
			return rm_fail(s, RM_STAGE_SETUID);
	}
	// Set after the credentials, which clear it; honoured at once if the
	// arbiter died meanwhile.
	if (s->pdeathsig > 0) {
		if (syscall(SYS_prctl, PR_SET_PDEATHSIG, s->pdeathsig, 0, 0, 0) != 0)
			return rm_fail(s, RM_STAGE_PDEATHSIG);
		if (syscall(SYS_getppid) != s->ppid)
			syscall(SYS_kill, syscall(SYS_getpid), s->pdeathsig);
	}
	// After the credentials, as os/exec does: the worker's own user must be
	// able to reach its working directory.
	if (s->dir != NULL && syscall(SYS_chdir, s->dir) != 0)
		return rm_fail(s, RM_STAGE_CHDIR);
	if (s->listen_pid != NULL)
		rm_itoa(s->listen_pid, syscall(SYS_getpid));
	// Exactly the fds handed over, even if something was opened without
	// O_CLOEXEC elsewhere in the arbiter.
	if (syscall(SYS_close_range, s->nfds, ~0U, 0) != 0) {
		for (int fd = s->nfds; fd < 65536; fd++)
			syscall(SYS_close, fd);
	}
	syscall(SYS_execve, s->path, s->argv, s->envp);
	return rm_fail(s, RM_STAGE_EXEC);
}

int rm_spawn_run(struct rm_spawn *s) {
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &s->oldmask);
	s->err = 0;
	s->stage = 0;
	s->cgroup_failed = -1;
	s->pidfd = -1;
	int pid = -1;
	void *stack = mmap(NULL, RM_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		s->err = errno;
		s->stage = RM_STAGE_CLONE;
	} else {
		pid = clone(rm_child, (char *)stack + RM_STACK_SIZE, CLONE_VM | CLONE_VFORK | CLONE_PIDFD | SIGCHLD, s, &s->pidfd);
		if (pid < 0 && errno == EINVAL) {
			// A kernel before 5.2 has no CLONE_PIDFD: signal by pid.
			s->pidfd = -1;
			pid = clone(rm_child, (char *)stack + RM_STACK_SIZE, CLONE_VM | CLONE_VFORK | SIGCHLD, s);
		}
		if (pid < 0) {
			s->err = errno;
			s->stage = RM_STAGE_CLONE;
		}
		munmap(stack, RM_STACK_SIZE);
	}
	pthread_sigmask(SIG_SETMASK, &s->oldmask, NULL);
	return pid;
}
