package arbiter

import (
	"os"

	"golang.org/x/sys/unix"
)

// Holding the reaper, and adopting children, for the upgrade in place
// (upgrade.go). While the old image collects the state it hands over, no
// exit may be reaped: a worker written down as alive whose exit was then
// routed to a loop that no longer reads would be adopted by the new image
// as a live pid that is nobody's. Held, the reaper reaps nothing; the dead
// stay zombies, their pids their own, and the new image, which starts its
// reaper held too, adopts every pid it was handed before it reaps any:
// exits during the hand-over are then routed as any other.

// hold stops the reaping until unhold: once it returns, no exit is being
// reaped or routed, and none will be.
func (r *reaper) hold() {
	// A drain under way has finished (its exits delivered) once this
	// lock is ours; the next sees held and reaps nothing.
	r.draining.Lock()
	defer r.draining.Unlock()
	r.mu.Lock()
	r.held = true
	r.mu.Unlock()
}

// unhold lets the reaper reap again, at once: the exits that happened
// while it was held are waiting as zombies.
func (r *reaper) unhold() {
	r.mu.Lock()
	r.held = false
	kick := r.kick
	r.mu.Unlock()
	if kick != nil {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
}

// adopt registers pid, a child this process did not spawn in this image
// (it was handed over by the image before it), as owned by owner, and
// returns a handle that signals it through a pidfd. Call it while the
// reaper is held, so that no exit of pid is taken for an orphan's.
func (r *reaper) adopt(pid int, owner chan<- exitStatus) (*pidfdProc, error) {
	// A child of ours, unreaped: its pid is its own, so the pidfd is its.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, os.NewSyscallError("pidfd_open", err)
	}
	unix.CloseOnExec(fd)
	sp := &spawning{owner: owner}
	r.mu.Lock()
	r.owners[pid] = sp
	r.mu.Unlock()
	return &pidfdProc{pid: pid, pidfd: fd, spawn: sp}, nil
}
