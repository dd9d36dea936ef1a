package pubsub_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The arbiter emits pubsub.Events and never speaks ZeroMQ itself: the
// binding stays behind control/ and pubsub/zmqpub (DESIGN.md, issue 14).
// The check runs here, not in package arbiter, whose tests run arbiters:
// their reaper waits for every child of the test process, go list's too.
func TestArbiterHasNoZMQDependency(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "github.com/ringmaster-dev/ringmaster/arbiter").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "github.com/ringmaster-dev/ringmaster/pubsub\n") {
		t.Fatalf("go list -deps of the arbiter lacks pubsub: %s", out)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/go-zeromq/zmq4") {
			t.Errorf("arbiter depends on %s", dep)
		}
	}
}
