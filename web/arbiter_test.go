package web_test

import (
	"encoding/json"
	"os"
	"testing"

	"github.com/ringmaster-dev/ringmaster/stats"
	"github.com/ringmaster-dev/ringmaster/web"
)

// The arbiter's start the page shows is its process's, which an upgrade in
// place keeps (issue 18), not the console's: "up" goes on across an exec.
func TestArbiterStartedIsTheProcess(t *testing.T) {
	e := start(t, twoSleepers, web.Options{})
	snap := e.dial("", nil).next()
	var s struct {
		Arbiter struct {
			Pid     int
			Started float64
		}
	}
	if err := json.Unmarshal([]byte(snap.raw), &s); err != nil {
		t.Fatal(err)
	}
	sampler, err := stats.NewSampler()
	if err != nil {
		t.Fatal(err)
	}
	in, err := sampler.Process(stats.Process{Pid: os.Getpid()}, false)
	if err != nil {
		t.Fatal(err)
	}
	if s.Arbiter.Pid != os.Getpid() || s.Arbiter.Started != in.CreateTime {
		t.Errorf("snapshot's arbiter: pid %d started %f, want pid %d started %f (its process's start)", s.Arbiter.Pid, s.Arbiter.Started, os.Getpid(), in.CreateTime)
	}
}
