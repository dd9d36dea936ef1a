package arbiter_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The arbiter emits pubsub.Events and never speaks ZeroMQ itself: the
// binding stays behind control/ and pubsub/zmqpub (DESIGN.md, issue 14).
func TestNoZMQDependency(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/go-zeromq/zmq4") {
			t.Errorf("arbiter depends on %s", dep)
		}
	}
}
