package config

import (
	"strings"
	"testing"
)

func TestCgroup(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name, body string
		want       Cgroup
	}{
		{"default", "", Cgroup{}},
		{"auto", "cgroup = auto", Cgroup{}},
		{"off", "cgroup = OFF", Cgroup{Mode: CgroupOff}},
		{"worker with limits", "cgroup = worker\ncgroup.memory_max = 512M\ncgroup.pids_max = 100\ncgroup.cpu_quota = 50%",
			Cgroup{Mode: CgroupWorker, MemoryMax: 512 << 20, PidsMax: 100, CPUQuota: 50}},
		{"bare quota, sizes", "cgroup.memory_max = 2GiB\ncgroup.cpu_quota = 250", Cgroup{MemoryMax: 2 << 30, CPUQuota: 250}},
		{"memory in bytes", "cgroup.memory_max = 1048576", Cgroup{MemoryMax: 1 << 20}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse("c.ini", []byte("[watcher:w]\ncmd = w\n"+tt.body+"\n"))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Watchers[0].Cgroup; got != tt.want {
				t.Errorf("Cgroup = %+v, want %+v", got, tt.want)
			}
			if len(c.Warnings) != 0 {
				t.Errorf("warnings: %v", c.Warnings)
			}
		})
	}
	if s := CgroupAuto.String(); s != "auto" {
		t.Errorf("CgroupAuto.String() = %q, want auto", s)
	}
}

func TestCgroupErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ body, want string }{
		{"cgroup = yes", `c.ini:3: [watcher:w] cgroup: "yes": want auto, worker or off`},
		{"cgroup.memory_max = lots", `c.ini:3: [watcher:w] cgroup.memory_max: "lots" is not a size in bytes`},
		{"cgroup.memory_max = 512", `c.ini:3: [watcher:w] cgroup.memory_max: "512" is under 1M, too little for any worker (a bare number is bytes: write 512M for megabytes)`},
		{"cgroup.memory_max = 64K", `c.ini:3: [watcher:w] cgroup.memory_max: "64K" is under 1M, too little for any worker`},
		{"cgroup.pids_max = many", `c.ini:3: [watcher:w] cgroup.pids_max: "many" is not a number`},
		{"cgroup.pids_max = 0", `c.ini:3: [watcher:w] cgroup.pids_max: 0: a worker is itself one task`},
		{"cgroup.cpu_quota = half", `c.ini:3: [watcher:w] cgroup.cpu_quota: "half" is not a percentage of one CPU`},
		{"cgroup.cpu_quota = 0.5%", `c.ini:3: [watcher:w] cgroup.cpu_quota: 0.5% is out of range 1..100000`},
		{"cgroup = off\ncgroup.pids_max = 10", "c.ini:4: [watcher:w] cgroup.pids_max: needs a cgroup: it cannot be enforced with cgroup = off"},
	} {
		_, err := Parse("c.ini", []byte("[watcher:w]\ncmd = w\n"+tt.body+"\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: err = %v, want %q", tt.body, err, tt.want)
		}
	}
	// A typo is caught by the usual unknown-key warning.
	c, err := Parse("c.ini", []byte("[watcher:w]\ncmd = w\ncgroup.pid_max = 10\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Error(), "did you mean cgroup.pids_max?") {
		t.Errorf("warnings = %v, want one suggesting cgroup.pids_max", c.Warnings)
	}
}
