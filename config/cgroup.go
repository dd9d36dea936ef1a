package config

import (
	"math"
	"strconv"
	"strings"
)

// Cgroup is a watcher's use of Linux control groups: the cgroup and
// cgroup.* keys (Ringmaster's; Circus has none). The arbiter finds at
// start-up what the host offers; where it offers nothing writable, workers
// run without cgroups, and a limit that cannot be enforced is logged as
// such. The zero value is cgroup = auto without limits.
type Cgroup struct {
	// Mode is the cgroup key: CgroupAuto (a cgroup per watcher, where the
	// host has them), CgroupWorker (and one per worker inside it) or
	// CgroupOff.
	Mode CgroupMode
	// MemoryMax is cgroup.memory_max, in bytes (512M, 2G); 0: none. Like
	// systemd's MemoryMax: beyond it the kernel reclaims, then its OOM
	// killer kills a process of the cgroup, and an oom event is published.
	MemoryMax int64
	// PidsMax is cgroup.pids_max, the processes and threads the cgroup may
	// hold (systemd's TasksMax); 0: none. A fork past it fails, which is
	// what stops a fork bomb.
	PidsMax int64
	// CPUQuota is cgroup.cpu_quota, in percent of one CPU (systemd's
	// CPUQuota; 200 is two CPUs); 0: none. The kernel throttles the cgroup
	// to it, where limit.max_cpu replaces a worker that uses too much.
	CPUQuota float64
}

// CgroupMode is a value of the cgroup key.
type CgroupMode string

// The cgroup values. The limits apply to the cgroup the workers run in: the
// watcher's, shared by all its workers, with auto; each worker's with
// worker.
const (
	CgroupAuto   CgroupMode = ""
	CgroupWorker CgroupMode = "worker"
	CgroupOff    CgroupMode = "off"
)

func (m CgroupMode) String() string {
	if m == CgroupAuto {
		return "auto"
	}
	return string(m)
}

// Limited reports whether a limit is set.
func (c Cgroup) Limited() bool { return c.MemoryMax > 0 || c.PidsMax > 0 || c.CPUQuota > 0 }

// cgroupKeys are the keys readCgroup reads, in the order errors name them.
var cgroupKeys = []string{"cgroup", "cgroup.memory_max", "cgroup.pids_max", "cgroup.cpu_quota"}

// readCgroup reads the cgroup keys into c.
func (f *fields) readCgroup(c *Cgroup) {
	if v, ok := f.get("cgroup"); ok {
		switch m := strings.ToLower(strings.TrimSpace(v)); m {
		case "auto":
			c.Mode = CgroupAuto
		case "worker":
			c.Mode = CgroupWorker
		case "off":
			c.Mode = CgroupOff
		default:
			f.errorf("cgroup", "%q: want auto, worker or off", v)
		}
	}
	if v, ok := f.get("cgroup.memory_max"); ok {
		n, err := parseSize(v)
		switch {
		case err != nil:
			f.errorf("cgroup.memory_max", "%v", err)
		case n > 0 && n < 1<<20:
			msg := "%q is under 1M, too little for any worker"
			if _, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
				// A bare number is bytes, which is rarely what is meant.
				msg += " (a bare number is bytes: write " + strings.TrimSpace(v) + "M for megabytes)"
			}
			f.errorf("cgroup.memory_max", msg, v)
		default:
			c.MemoryMax = n
		}
	}
	if v, ok := f.get("cgroup.pids_max"); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		switch {
		case err != nil:
			f.errorf("cgroup.pids_max", "%q is not a number", v)
		case n < 1:
			f.errorf("cgroup.pids_max", "%d: a worker is itself one task; want 1 or more", n)
		default:
			c.PidsMax = n
		}
	}
	if v, ok := f.get("cgroup.cpu_quota"); ok {
		s := strings.TrimSuffix(strings.TrimSpace(v), "%")
		p, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		switch {
		case err != nil || math.IsNaN(p) || math.IsInf(p, 0):
			f.errorf("cgroup.cpu_quota", "%q is not a percentage of one CPU (50, 50%%, 200)", v)
		case p < 1 || p > 100000:
			f.errorf("cgroup.cpu_quota", "%v%% is out of range 1..100000 (percent of one CPU)", p)
		default:
			c.CPUQuota = p
		}
	}
	if c.Mode == CgroupOff {
		for _, k := range cgroupKeys[1:] {
			if _, ok := f.get(k); ok {
				f.errorf(k, "needs a cgroup: it cannot be enforced with cgroup = off")
			}
		}
	}
}
