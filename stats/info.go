package stats

import (
	"fmt"
	"strconv"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// ErrNoProcess is returned when the process asked for does not exist (any
// more). Circus answers it with "No such process (stopped?)".
var ErrNoProcess = procfs.ErrNoProcess

// Info is one sample of one process: the fields of Circus's process info
// (reference §4.2), in the units Circus uses. Its MarshalJSON writes them
// as Circus does, in Circus's key order.
type Info struct {
	Pid        int
	RSS        uint64        // resident set size in bytes (mem_info1)
	VMS        uint64        // virtual memory size in bytes (mem_info2)
	CPU        float64       // % of one core since the previous sample, 1 decimal (cpu)
	Mem        float64       // RSS as % of MemTotal, 3 decimals (mem)
	CPUTime    time.Duration // user+system time of the process and its reaped children (ctime)
	Username   string        // owner of the real uid, or the uid in decimal
	Nice       int
	CreateTime float64 // start time, epoch seconds, computed as psutil does (create_time)
	Age        float64 // seconds since Started for a worker, since CreateTime otherwise
	Cmdline    string  // basename of argv[0]
	// Children are the direct children, each sampled without its own
	// children; nil when not asked for, which marshals as [] as in Circus.
	Children []Info
	// Started is when the arbiter spawned the worker, Wid its slot. A zero
	// Started means the process is not a worker (the arbiter itself, a
	// child): then neither "started" nor "wid" is written.
	Started time.Time
	Wid     int

	// na marks the fields that could not be read (permission denied, a
	// zombie's empty argv); they are written as "N/A".
	na naFields
}

// naFields is a set of Info fields that are not available.
type naFields uint8

const (
	naMem     naFields = 1 << iota // mem_info1, mem_info2, mem
	naCPU                          // cpu, ctime, nice, create_time, age
	naUser                         // username
	naCmdline                      // cmdline
)

// MarshalJSON writes the info as Circus's process.info() does, for the
// stats and dstats commands:
//
//	{"mem_info1": "1.34M", "mem_info2": "2.44M", "cpu": 0.0, "mem": 0.006,
//	"ctime": "0:00.20", "pid": 8627, "username": "root", "nice": 0,
//	"create_time": 1795464648.28, "age": 17.04, "cmdline": "sleep",
//	"children": [], "started": 1795464649.2569616, "wid": 1}
func (in Info) MarshalJSON() ([]byte, error) {
	return in.appendJSON(nil).end(), nil
}

// appendJSON starts an object with in's members; callers may add more
// (the stats stream adds "subtopic" and "name") before ending it.
func (in *Info) appendJSON(b []byte) *object {
	o := newObject(b)
	if in.na&naMem != 0 {
		o.na("mem_info1")
		o.na("mem_info2")
	} else {
		o.str("mem_info1", bytes2human(in.RSS))
		o.str("mem_info2", bytes2human(in.VMS))
	}
	if in.na&naCPU != 0 {
		o.na("cpu")
	} else {
		o.float("cpu", in.CPU)
	}
	if in.na&naMem != 0 {
		o.na("mem")
	} else {
		o.float("mem", in.Mem)
	}
	if in.na&naCPU != 0 {
		o.na("ctime")
	} else {
		o.str("ctime", formatCPUTime(in.CPUTime))
	}
	o.int("pid", in.Pid)
	if in.na&naUser != 0 {
		o.na("username")
	} else {
		o.str("username", in.Username)
	}
	if in.na&naCPU != 0 {
		o.na("nice")
		o.na("create_time")
		o.na("age")
	} else {
		o.int("nice", in.Nice)
		o.float("create_time", in.CreateTime)
		o.float("age", in.Age)
	}
	if in.na&naCmdline != 0 {
		o.na("cmdline")
	} else {
		o.str("cmdline", in.Cmdline)
	}
	o.key("children")
	o.b = append(o.b, '[')
	for i := range in.Children {
		if i > 0 {
			o.b = append(o.b, ", "...)
		}
		o.b = in.Children[i].appendJSON(o.b).end()
	}
	o.b = append(o.b, ']')
	if !in.Started.IsZero() {
		o.float("started", epoch(in.Started))
		o.int("wid", in.Wid)
	}
	return o
}

// epoch is t as Python's time.time() gives it.
func epoch(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// bytes2human is Circus's util.bytes2human: "512B" below 1 KiB, else two
// decimals and the largest binary prefix that fits ("1.34M").
func bytes2human(n uint64) string {
	const symbols = "KMGTPE"
	for i := len(symbols) - 1; i >= 0; i-- {
		unit := uint64(1) << (10 * (i + 1))
		if n >= unit {
			return strconv.FormatFloat(float64(n)/float64(unit), 'f', 2, 64) + symbols[i:i+1]
		}
	}
	return strconv.FormatUint(n, 10) + "B"
}

// formatCPUTime writes d as "M:SS.cc": total minutes, seconds, hundredths
// (truncated). Circus formats a timedelta by hand and gets two cases wrong,
// which are not copied: its minutes wrap at an hour, and its hundredths are
// the first two digits of the microseconds unpadded ("0:00.50" for 50 ms,
// "0:00.0" for none).
func formatCPUTime(d time.Duration) string {
	cs := int64(d / (10 * time.Millisecond))
	return fmt.Sprintf("%d:%02d.%02d", cs/6000, cs/100%60, cs%100)
}

// round is Python's round(f, digits): correctly rounded on f's exact
// binary value, as strconv's fixed formatting is.
func round(f float64, digits int) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(f, 'f', digits, 64), 64)
	return r
}
