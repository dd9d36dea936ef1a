package arbiter

import "golang.org/x/sys/unix"

// adopt registers pid, a child of this process that no spawn of this image
// made (one forked before an exec of the arbiter: an upgrade in place), as
// owned by owner, and returns its entry. Call it while the reaper runs.
// A child that exited before it was registered is a zombie, whose
// SIGCHLD went to the old image: a drain is asked for, which reaps it and
// routes its exit to owner.
func (r *reaper) adopt(pid int, owner chan<- exitStatus) *spawning {
	sp := &spawning{owner: owner}
	r.mu.Lock()
	r.owners[pid] = sp
	r.mu.Unlock()
	_ = unix.Kill(unix.Getpid(), unix.SIGCHLD)
	return sp
}
