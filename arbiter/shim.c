// The exec shim. When the arbiter needs to set process state that os/exec
// cannot set between fork and exec (umask, rlimits, nice, chroot before the
// credentials, and LISTEN_PID, which must be the child's own pid), it starts
// its own binary (/proc/self/exe) with the target's argv and describes the
// work in __RINGMASTER_SHIM_* variables. This constructor runs before the Go
// runtime starts, applies that state and execve()s the target, so a shimmed
// spawn costs one extra exec (about 2 ms here) rather than a Go runtime start
// (about 7 ms, and about 1 s in a -race build). Without those variables it
// returns at once and the program starts as usual.

#define _GNU_SOURCE
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

extern char **environ;

static void shim_die(const char *what, const char *arg) {
	char buf[1024];
	int e = errno;
	int n = snprintf(buf, sizeof buf, "ringmaster exec shim: %s %s: %s\n", what, arg ? arg : "", strerror(e));
	if (n > 0) {
		ssize_t w = write(2, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
		(void)w;
	}
	_exit(127);
}

// shim_take returns a copy of the variable and removes it, so that nothing of
// the shim's protocol reaches the target's environment.
static char *shim_take(const char *name) {
	char *v = getenv(name);
	if (v == NULL)
		return NULL;
	v = strdup(v);
	if (v == NULL)
		shim_die("strdup", name);
	unsetenv(name);
	return v;
}

static unsigned long long shim_num(const char *s, const char *what) {
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno != 0 || end == s) {
		errno = EINVAL;
		shim_die(what, s);
	}
	return v;
}

__attribute__((constructor)) static void ringmaster_shim(int argc, char **argv, char **envp) {
	(void)envp;
	char *exe = shim_take("__RINGMASTER_SHIM_EXE");
	if (exe == NULL)
		return;
	char *rlimits = shim_take("__RINGMASTER_SHIM_RLIMITS");
	char *nice = shim_take("__RINGMASTER_SHIM_NICE");
	char *umask_s = shim_take("__RINGMASTER_SHIM_UMASK");
	char *root = shim_take("__RINGMASTER_SHIM_CHROOT");
	char *dir = shim_take("__RINGMASTER_SHIM_DIR");
	char *groups = shim_take("__RINGMASTER_SHIM_GROUPS");
	char *gid = shim_take("__RINGMASTER_SHIM_GID");
	char *uid = shim_take("__RINGMASTER_SHIM_UID");
	char *pdeath = shim_take("__RINGMASTER_SHIM_PDEATHSIG");
	char *ppid = shim_take("__RINGMASTER_SHIM_PPID");
	char *listen = shim_take("__RINGMASTER_SHIM_LISTEN_PID");
	char *nfds = shim_take("__RINGMASTER_SHIM_NFDS");

	if (argc < 1 || argv == NULL) {
		errno = EINVAL;
		shim_die("no argv for", exe);
	}

	// Limits and priority first: raising a hard limit or lowering nice needs
	// the privileges we may drop below.
	if (rlimits != NULL && *rlimits != '\0') {
		char *save = NULL;
		for (char *tok = strtok_r(rlimits, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
			char *cur = strchr(tok, ':');
			if (cur == NULL) {
				errno = EINVAL;
				shim_die("rlimit", tok);
			}
			*cur++ = '\0';
			char *max = strchr(cur, ':');
			if (max == NULL) {
				errno = EINVAL;
				shim_die("rlimit", tok);
			}
			*max++ = '\0';
			struct rlimit rl = {.rlim_cur = shim_num(cur, "rlimit"), .rlim_max = shim_num(max, "rlimit")};
			if (setrlimit((int)shim_num(tok, "rlimit"), &rl) != 0)
				shim_die("setrlimit", tok);
		}
	}
	if (nice != NULL) {
		if (setpriority(PRIO_PROCESS, 0, atoi(nice)) != 0)
			shim_die("setpriority", nice);
	}
	if (umask_s != NULL)
		umask((mode_t)strtoul(umask_s, NULL, 8));
	if (root != NULL) {
		if (chroot(root) != 0)
			shim_die("chroot", root);
		if (chdir("/") != 0)
			shim_die("chdir", "/");
	}
	if (groups != NULL) {
		gid_t list[256];
		size_t n = 0;
		char *save = NULL;
		for (char *tok = strtok_r(groups, ",", &save); tok != NULL && n < 256; tok = strtok_r(NULL, ",", &save))
			list[n++] = (gid_t)shim_num(tok, "groups");
		if (setgroups(n, list) != 0)
			shim_die("setgroups", groups);
	}
	if (gid != NULL && setgid((gid_t)shim_num(gid, "gid")) != 0)
		shim_die("setgid", gid);
	if (uid != NULL && setuid((uid_t)shim_num(uid, "uid")) != 0)
		shim_die("setuid", uid);
	// Credentials changes clear the parent-death signal; set it again, and
	// honour it at once if the arbiter died while we were getting here.
	if (pdeath != NULL) {
		int sig = (int)shim_num(pdeath, "pdeathsig");
		if (prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0)
			shim_die("prctl", "PR_SET_PDEATHSIG");
		if (ppid != NULL && getppid() != (pid_t)shim_num(ppid, "ppid"))
			kill(getpid(), sig);
	}
	// After the credentials, as os/exec does: the worker's own user must be
	// able to reach its working directory.
	if (dir != NULL && chdir(dir) != 0)
		shim_die("chdir", dir);
	if (listen != NULL) {
		char pid[32];
		snprintf(pid, sizeof pid, "%ld", (long)getpid());
		if (setenv("LISTEN_PID", pid, 1) != 0)
			shim_die("setenv", "LISTEN_PID");
	}
	// The worker gets exactly the fds it was handed (stdio and its sockets):
	// anything the loader or a runtime linked into this binary opened
	// without O_CLOEXEC must not reach it.
	if (nfds != NULL) {
		unsigned int keep = (unsigned int)shim_num(nfds, "nfds");
		if (syscall(SYS_close_range, keep, ~0U, 0) != 0) {
			long max = sysconf(_SC_OPEN_MAX);
			for (long fd = keep; fd < max; fd++)
				close((int)fd);
		}
	}
	execve(exe, argv, environ);
	shim_die("exec", exe);
}
