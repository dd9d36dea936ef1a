package arbiter

// The C side of the exec shim lives in shim.c; cgo compiles it into every
// binary that links this package, which is what lets the arbiter re-invoke
// itself as the shim. Building without cgo is not supported.

import "C"

import (
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
)

// shimExe is what a shimmed spawn executes: this very binary, whose C
// constructor (shim.c) does the work before any Go code runs.
const shimExe = "/proc/self/exe"

// needsShim reports whether a worker of w needs state that only the shim can
// set. sockets is whether the worker receives sockets (then LISTEN_PID must
// be its own pid).
func needsShim(w *config.Watcher, sockets bool) bool {
	return sockets || w.Umask >= 0 || w.Nice != 0 || len(w.Rlimits) > 0 || w.Chroot != ""
}

// shimEnv returns the variables that tell the shim what to do before it
// executes exe; nfds is how many fds (from 0) the worker is handed. The shim removes every one of them from the environment.
func shimEnv(w *config.Watcher, exe, dir string, nfds int, listenPID bool) []string {
	env := []string{"__RINGMASTER_SHIM_EXE=" + exe, "__RINGMASTER_SHIM_NFDS=" + strconv.Itoa(nfds)}
	if len(w.Rlimits) > 0 {
		parts := make([]string, 0, len(w.Rlimits))
		for _, r := range w.Rlimits {
			v := strconv.FormatUint(r.Value, 10)
			parts = append(parts, strconv.Itoa(r.Resource)+":"+v+":"+v)
		}
		env = append(env, "__RINGMASTER_SHIM_RLIMITS="+strings.Join(parts, ","))
	}
	if w.Nice != 0 {
		env = append(env, "__RINGMASTER_SHIM_NICE="+strconv.Itoa(w.Nice))
	}
	if w.Umask >= 0 {
		env = append(env, "__RINGMASTER_SHIM_UMASK="+strconv.FormatInt(int64(w.Umask), 8))
	}
	if w.Chroot != "" {
		env = append(env, "__RINGMASTER_SHIM_CHROOT="+w.Chroot)
	}
	if dir != "" {
		env = append(env, "__RINGMASTER_SHIM_DIR="+dir)
	}
	if uid, gid, groups, ok := credentials(w); ok {
		if groups != nil {
			g := make([]string, len(groups))
			for i, id := range groups {
				g[i] = strconv.FormatUint(uint64(id), 10)
			}
			env = append(env, "__RINGMASTER_SHIM_GROUPS="+strings.Join(g, ","))
		}
		env = append(env,
			"__RINGMASTER_SHIM_GID="+strconv.FormatUint(uint64(gid), 10),
			"__RINGMASTER_SHIM_UID="+strconv.FormatUint(uint64(uid), 10))
	}
	env = append(env,
		"__RINGMASTER_SHIM_PDEATHSIG="+strconv.Itoa(int(unix.SIGKILL)),
		"__RINGMASTER_SHIM_PPID="+strconv.Itoa(os.Getpid()))
	if listenPID {
		env = append(env, "__RINGMASTER_SHIM_LISTEN_PID=1")
	}
	return env
}

// credentials returns the uid, gid and supplementary groups a worker of w
// runs with, and whether they differ from the arbiter's own (so that an
// unprivileged arbiter never tries a setgroups it cannot do).
func credentials(w *config.Watcher) (uid, gid uint32, groups []uint32, change bool) {
	uid, gid = uint32(os.Getuid()), uint32(os.Getgid())
	if w.UID >= 0 {
		uid = uint32(w.UID)
		change = change || w.UID != os.Getuid()
	}
	if w.GID >= 0 {
		gid = uint32(w.GID)
		change = change || w.GID != os.Getgid()
	}
	if w.UID >= 0 && w.UID != os.Getuid() {
		// initgroups, as Circus does: the user's supplementary groups.
		groups = make([]uint32, 0, len(w.Groups)+1)
		for _, g := range w.Groups {
			groups = append(groups, uint32(g))
		}
		if len(groups) == 0 {
			groups = append(groups, gid)
		}
	}
	if change && groups == nil && os.Getuid() == 0 {
		// A gid change alone must not leave root's supplementary groups.
		groups = []uint32{gid}
	}
	return uid, gid, groups, change
}
