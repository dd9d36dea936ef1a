package cgroups

import (
	"fmt"
	"math"
	"path"
	"strconv"
)

// Limits are a cgroup's resource limits. The zero value sets none.
type Limits struct {
	// MemoryMax is the memory the cgroup may use, in bytes: v2 memory.max,
	// v1 memory.limit_in_bytes. Beyond it the kernel reclaims, then its
	// OOM killer kills a process of the cgroup. 0: none.
	MemoryMax int64
	// PidsMax is how many tasks (processes and threads) the cgroup may
	// hold: pids.max. A fork or thread creation past it fails with EAGAIN.
	// 0: none.
	PidsMax int64
	// CPUQuota is the CPU time the cgroup may use, in percent of one CPU
	// (150: one and a half), per 100 ms period: v2 cpu.max, v1
	// cpu.cfs_quota_us. 0: none.
	CPUQuota float64
}

// Controllers returns the controllers that enforce l.
func (l Limits) Controllers() []string {
	var cs []string
	if l.MemoryMax > 0 {
		cs = append(cs, Memory)
	}
	if l.PidsMax > 0 {
		cs = append(cs, Pids)
	}
	if l.CPUQuota > 0 {
		cs = append(cs, CPU)
	}
	return cs
}

// cpuPeriod is the scheduling period of a CPU quota, the kernel's
// default, in microseconds.
const cpuPeriod = 100000

// cpuQuotaMicros is the quota per period for pct percent of one CPU; the
// kernel refuses less than 1 ms.
func cpuQuotaMicros(pct float64) int64 {
	return max(int64(math.Round(pct/100*cpuPeriod)), 1000)
}

// setting is one file write that applies (or lifts) a controller's limit.
type setting struct{ file, value string }

// settings returns the writes that give the cgroup of controller c on a
// hierarchy of version v the limit of l, or lift it when l sets none.
func settings(c string, v int, l Limits) []setting {
	switch c {
	case Memory:
		if v == 2 {
			return []setting{{"memory.max", maxOr(l.MemoryMax)}}
		}
		n := "-1"
		if l.MemoryMax > 0 {
			n = strconv.FormatInt(l.MemoryMax, 10)
		}
		return []setting{{"memory.limit_in_bytes", n}}
	case Pids:
		return []setting{{"pids.max", maxOr(l.PidsMax)}}
	case CPU:
		if v == 2 {
			q := "max"
			if l.CPUQuota > 0 {
				q = strconv.FormatInt(cpuQuotaMicros(l.CPUQuota), 10)
			}
			return []setting{{"cpu.max", q + " " + strconv.Itoa(cpuPeriod)}}
		}
		q := "-1"
		if l.CPUQuota > 0 {
			q = strconv.FormatInt(cpuQuotaMicros(l.CPUQuota), 10)
		}
		return []setting{{"cpu.cfs_period_us", strconv.Itoa(cpuPeriod)}, {"cpu.cfs_quota_us", q}}
	}
	panic("BUG: no settings for controller " + c)
}

func maxOr(n int64) string {
	if n <= 0 {
		return "max"
	}
	return strconv.FormatInt(n, 10)
}

func applySettings(dir string, ss []setting) error {
	for _, s := range ss {
		if err := writeFile(path.Join(dir, s.file), s.value); err != nil {
			return fmt.Errorf("set %s: %w", s.file, err)
		}
	}
	return nil
}
