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
// signal to its default before restoring the mask and executing. The child
// runs on a stack of its own, mapped for each spawn, never on the parent's.
//
// cgroups. A worker with a v2 cgroup is created in it by clone3's
// CLONE_INTO_CGROUP (Linux 5.7; what os/exec's UseCgroupFD uses): it is in
// it from its first instruction, with no migration. Writing to
// cgroup.procs instead is a migration, and the first migration after a
// quiet moment waits for an RCU grace period: a respawn measured 11-16 ms
// with the write against 4.7 ms without (reference/kernel-facts.md §1);
// BenchmarkRespawnCgroup, forkExec of /bin/true 100 ms after the last,
// 3.0 ms with clone3 into v2, 8.9 ms with the write, 3.1 ms without a
// cgroup (one run; on a machine busy with other cgroup users, where
// clone3 probably waits for the cgroup_mutex their migrations hold,
// medians of 1.5, 1.6 and 0.8 ms). glibc exports no clone3 (nor a way to
// run a function on a new stack with it), so rm_clone3 below is a small
// trampoline per architecture (x86_64, aarch64). Where clone3 or
// CLONE_INTO_CGROUP is missing (ENOSYS, from old kernels and from seccomp
// filters that hide clone3; E2BIG or EINVAL from kernels before 5.7), or
// on another architecture, the child is made with glibc's clone() and
// writes "0" to the cgroup's cgroup.procs, as it did before. v1
// hierarchies have nothing like CLONE_INTO_CGROUP: the child writes to
// their cgroup.procs first of all, before it can fork, and the arbiter
// asks for that only where a v1 hierarchy carries a limit the watcher sets
// (or on a host without v2, where v1 is all there is).

#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "guardian.h"
#include "spawn.h"

// The architectures this file was written for: those Go runs Linux on with
// cgo. What depends on the architecture here: the id system calls (below),
// the rlimit layout (prlimit64's is the same everywhere), clone()'s stack
// argument (the top of the stack, which grows down on all of these, unlike
// hppa's), and rm_clone3, a trampoline for x86_64 and aarch64 only
// (elsewhere the child is made with clone() and writes to cgroup.procs).
// Check those before adding another.
#if !defined(__linux__)
#error "spawn.c is for Linux only"
#endif
#if !(defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) ||              \
      (defined(__riscv) && __riscv_xlen == 64) || defined(__powerpc64__) || defined(__s390x__) ||             \
      defined(__loongarch64) || defined(__mips__))
#error "spawn.c has not been checked for this architecture (see the comment above this line)"
#endif

// The id system calls taking 32-bit ids. Where Linux kept its 16-bit uid
// calls (i386, arm), the plain setgroups, setgid and setuid take 16-bit
// ids: setgid(70001) would set 4465, and setgroups would read the gid_t
// list as twice as many 16-bit ids. glibc (setuid.c: __NR_setuid32 where
// it is defined) and Go (syscall_linux_386.go and _arm.go: SYS_SETUID32...)
// choose the same way.
#ifdef SYS_setgroups32
#define RM_SYS_SETGROUPS SYS_setgroups32
#else
#define RM_SYS_SETGROUPS SYS_setgroups
#endif
#ifdef SYS_setgid32
#define RM_SYS_SETGID SYS_setgid32
#else
#define RM_SYS_SETGID SYS_setgid
#endif
#ifdef SYS_setuid32
#define RM_SYS_SETUID SYS_setuid32
#else
#define RM_SYS_SETUID SYS_setuid
#endif

// prlimit64's argument, the kernel's struct rlimit64 on every architecture:
// glibc's struct rlimit has 32-bit fields on 32-bit architectures unless
// built with _FILE_OFFSET_BITS=64, which cgo does not ask for.
struct rm_rlimit64 {
	uint64_t cur, max;
};

#define RM_STACK_SIZE (256 * 1024)

// clone3's argument as Linux 5.7 reads it (CLONE_ARGS_SIZE_VER2, 88
// bytes), spelt out so that older kernel headers build; a kernel that
// knows only a shorter one answers E2BIG.
struct rm_clone_args {
	uint64_t flags;
	uint64_t pidfd;
	uint64_t child_tid;
	uint64_t parent_tid;
	uint64_t exit_signal;
	uint64_t stack;
	uint64_t stack_size;
	uint64_t tls;
	uint64_t set_tid;
	uint64_t set_tid_size;
	uint64_t cgroup;
};

#define RM_CLONE_PIDFD 0x00001000ULL
#define RM_CLONE_INTO_CGROUP 0x200000000ULL

// Not for x32 nor arm64's ILP32, whose system call numbers differ.
#if (defined(__x86_64__) || defined(__aarch64__)) && !defined(__ILP32__)
#define RM_HAVE_CLONE3 1

// The numbers the trampolines below are written with, checked against the
// headers where they have them.
#if defined(SYS_clone3) && SYS_clone3 != 435
#error "rm_clone3: clone3 is not system call 435 here"
#endif
#if (defined(__x86_64__) && SYS_exit_group != 231) || (defined(__aarch64__) && SYS_exit_group != 94)
#error "rm_clone3: exit_group is not the system call number written below"
#endif

// rm_clone3 issues clone3(args, size). In the parent it returns the child's
// pid or -errno. The child starts on args->stack, never returns from here:
// it calls fn(arg) and exits with its result (fn normally execs or exits
// itself). It is assembly because the child must not run compiled C code
// of this function after the syscall: that code would address locals
// through the parent's stack pointer, which the child no longer has; and
// a C function called from the child must be entered with the stack
// aligned as the ABI wants. Only registers carry fn and arg across the
// syscall, because the child gets the parent's registers and nothing of
// its stack. (Go's rawVforkSyscall instead keeps the parent's stack and
// saves its return address in a register; glibc's clone3.S does what this
// does.)
long rm_clone3(struct rm_clone_args *args, size_t size, int (*fn)(void *), void *arg)
	__attribute__((visibility("hidden")));

#if defined(__x86_64__)
// System V: args in rdi, size in rsi, fn in rdx, arg in rcx. The syscall
// instruction destroys rcx and r11 and returns in rax; every other
// register survives it, in the parent and (copied) in the child. The
// kernel starts the child with rsp = stack + stack_size, 16-byte aligned
// since the mapping is page-aligned, so the call below enters fn with rsp
// 8 past a 16-byte boundary, as a call should.
__asm__(
	".pushsection .text\n"
	".globl rm_clone3\n"
	".hidden rm_clone3\n"
	".type rm_clone3, @function\n"
	".p2align 4\n"
	"rm_clone3:\n"
	"	movq %rcx, %r8\n"     // arg out of rcx, which syscall destroys
	"	movl $435, %eax\n"    // __NR_clone3
	"	syscall\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	ret\n"                // parent: the pid or -errno
	"1:\n"                    // child, on its own stack
	"	xorl %ebp, %ebp\n"    // the outermost frame, for unwinders
	"	movq %r8, %rdi\n"
	"	call *%rdx\n"
	"	movl %eax, %edi\n"
	"	movl $231, %eax\n"    // __NR_exit_group
	"	syscall\n"
	"	hlt\n"                // not reached
	".size rm_clone3, .-rm_clone3\n"
	".popsection\n");
#else
// AAPCS64: args in x0, size in x1, fn in x2, arg in x3; the syscall number
// in x8, the result in x0, and every other register survives svc (in the
// child too, copied). The kernel starts the child with sp = stack +
// stack_size, 16-byte aligned as the ABI requires. "bti c" (a hint, a no-op
// on cores without branch protection) lets rm_clone3 be called indirectly
// in a binary built with it.
__asm__(
	".pushsection .text\n"
	".globl rm_clone3\n"
	".hidden rm_clone3\n"
	".type rm_clone3, %function\n"
	".p2align 2\n"
	"rm_clone3:\n"
	"	hint #34\n"           // bti c
	"	mov x8, #435\n"       // __NR_clone3
	"	svc #0\n"
	"	cbz x0, 1f\n"
	"	ret\n"                // parent: the pid or -errno
	"1:\n"                    // child, on its own stack
	"	mov x29, xzr\n"       // the outermost frame, for unwinders
	"	mov x30, xzr\n"
	"	mov x0, x3\n"
	"	blr x2\n"
	"	mov x8, #94\n"        // __NR_exit_group
	"	svc #0\n"
	"	brk #0\n"             // not reached
	".size rm_clone3, .-rm_clone3\n"
	".popsection\n");
#endif
#endif

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

// rm_register tells the guardian this child is a worker, by a record
// with its own pid on the guardian's pipe (guardian.h). The write end is
// non-blocking (the reaper must never wait on it), so a full pipe is
// waited for here: the guardian reads promptly. A guardian that has died
// (EPIPE) is no failure: the arbiter's replacement for it learns the
// worker from the reaper. Signals are blocked: the SIGPIPE that write
// raises is taken back, and never reaches the worker.
static int rm_register(int fd) {
	struct rm_guard_rec rec = {.op = RM_GUARD_ADD, .pid = (int32_t)syscall(SYS_getpid)};
	for (;;) {
		long n = syscall(SYS_write, fd, &rec, sizeof rec);
		if (n == (long)sizeof rec)
			return 0;
		if (n >= 0) {
			errno = EIO; // a pipe writes a record this small whole
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			struct pollfd p = {.fd = fd, .events = POLLOUT};
			syscall(SYS_ppoll, &p, 1, NULL, NULL, 0);
			continue;
		}
		if (errno == EPIPE) {
			sigset_t pipe;
			sigemptyset(&pipe);
			sigaddset(&pipe, SIGPIPE);
			struct timespec now = {0};
			syscall(SYS_rt_sigtimedwait, &pipe, NULL, &now, _NSIG / 8);
			return 0;
		}
		return -1;
	}
}

static int rm_child(void *arg) {
	struct rm_spawn *s = arg;

	// First of all, so that no worker exists that the guardian does not
	// know, and closed at once: a child stuck further on (a hung
	// working_dir) must not hold the pipe open, which would keep the
	// guardian from seeing the arbiter's death.
	if (s->guardfd >= 0) {
		if (rm_register(s->guardfd) != 0)
			return rm_fail(s, RM_STAGE_GUARD);
		syscall(SYS_close, s->guardfd);
	}

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
	// the credentials change, after which the write may be refused. The
	// v2 cgroup's entry is a directory: nothing to do when clone3 created
	// the child in it; after the fallback clone(), its cgroup.procs is
	// opened here (the fd is the child's own: no CLONE_FILES) and written.
	for (int i = 0; i < s->ncgroup_fds; i++) {
		int fd = s->cgroup_fds[i];
		if (i == s->cgroup_clone) {
			if (s->in_cgroup)
				continue;
			fd = syscall(SYS_openat, fd, "cgroup.procs", O_WRONLY | O_CLOEXEC);
			if (fd < 0) {
				s->cgroup_failed = i;
				return rm_fail(s, RM_STAGE_CGROUP);
			}
		}
		if (syscall(SYS_write, fd, "0", 1) != 1) {
			s->cgroup_failed = i;
			return rm_fail(s, RM_STAGE_CGROUP);
		}
		if (i == s->cgroup_clone)
			syscall(SYS_close, fd);
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
		struct rm_rlimit64 rl = {.cur = s->rlimits[i].value, .max = s->rlimits[i].value};
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
	if (s->set_groups && syscall(RM_SYS_SETGROUPS, s->ngroups, s->groups) != 0)
		return rm_fail(s, RM_STAGE_SETGROUPS);
	if (s->set_creds) {
		if (syscall(RM_SYS_SETGID, s->gid) != 0)
			return rm_fail(s, RM_STAGE_SETGID);
		if (syscall(RM_SYS_SETUID, s->uid) != 0)
			return rm_fail(s, RM_STAGE_SETUID);
	}
	// Only without a guardian (spawn_cgo.go). Set after the credentials,
	// which clear it; honoured at once if the arbiter died meanwhile.
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

// rm_clone3_into tries to create the child in the v2 cgroup at
// s->cgroup_clone with clone3. It returns the child's pid; or -1 with
// s->err and s->stage set when the kernel refused the cgroup (no child);
// or 0 when clone3 or CLONE_INTO_CGROUP is unavailable, and the caller
// falls back to clone().
static int rm_clone3_into(struct rm_spawn *s, void *stack) {
#ifdef RM_HAVE_CLONE3
	struct rm_clone_args ca;
	memset(&ca, 0, sizeof ca);
	ca.flags = CLONE_VM | CLONE_VFORK | RM_CLONE_PIDFD | RM_CLONE_INTO_CGROUP;
	ca.pidfd = (uint64_t)(uintptr_t)&s->pidfd;
	ca.exit_signal = SIGCHLD;
	ca.stack = (uint64_t)(uintptr_t)stack;
	ca.stack_size = RM_STACK_SIZE;
	ca.cgroup = (uint64_t)s->cgroup_fds[s->cgroup_clone];
	// Before the clone: the child reads it, and the parent is suspended
	// until the child has execed or exited.
	s->in_cgroup = 1;
	long r = rm_clone3(&ca, sizeof ca, rm_child, s);
	if (r > 0)
		return (int)r;
	s->in_cgroup = 0;
	switch (r) {
	case -ENOSYS: // before 5.3, or hidden by a seccomp filter
	case -E2BIG:  // 5.3 to 5.6: no cgroup field
	case -EINVAL: // no CLONE_INTO_CGROUP
		return 0;
	}
	// The cgroup itself was refused (EBUSY: it has controllers for its
	// children; EOPNOTSUPP, EACCES, ENODEV...), as a write to its
	// cgroup.procs would be; or the clone failed as clone() would have
	// (EAGAIN, ENOMEM).
	s->err = (int)-r;
	s->stage = RM_STAGE_CLONE_CGROUP;
	s->cgroup_failed = s->cgroup_clone;
	return -1;
#else
	(void)s;
	(void)stack;
	return 0;
#endif
}

int rm_spawn_run(struct rm_spawn *s) {
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &s->oldmask);
	s->err = 0;
	s->stage = 0;
	s->cgroup_failed = -1;
	s->in_cgroup = 0;
	s->pidfd = -1;
	int pid = -1;
	void *stack = mmap(NULL, RM_STACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		s->err = errno;
		s->stage = RM_STAGE_CLONE;
	} else {
		pid = 0;
		if (s->cgroup_clone >= 0 && !s->no_clone3)
			pid = rm_clone3_into(s, stack);
		if (pid == 0) {
			s->pidfd = -1;
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
		}
		// The child has execed or exited (CLONE_VFORK): its stack is free.
		munmap(stack, RM_STACK_SIZE);
	}
	pthread_sigmask(SIG_SETMASK, &s->oldmask, NULL);
	return pid;
}
