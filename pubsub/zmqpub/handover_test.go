package zmqpub

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// A Sink in an image started by an in-place upgrade takes the ipc
// listener handed over (the live socket file is neither probed nor
// replaced) and serves subscribers on it. Not parallel: the inherited
// table is the process's.
func TestListenInherited(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ps.sock")
	endpoint := "ipc://" + path
	fd, _ := testproc.HandedOver(t, "zmq "+endpoint, "unix", path)
	handover.Inherit(map[string]int{"zmq " + endpoint: fd})
	defer handover.Inherit(nil)
	s, err := Listen(endpoint, SinkOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("Listen(%q) = %v", endpoint, err)
	}
	defer s.Close()
	if u := handover.Unclaimed(); len(u) != 0 {
		t.Errorf("Unclaimed() = %v, want the endpoint's listener taken", u)
	}
	sub := goSub(t, s.Addr(), "watcher.web.")
	waitSubscribed(t, s, 1, 1)
	evs := oneOfEachKind()
	for _, ev := range evs {
		s.Send(pubsub.Topic(ev), pubsub.Body(ev))
	}
	w := want(evs, "watcher.web.")
	if diff := cmp.Diff(w, recvN(t, sub, len(w))); diff != "" {
		t.Errorf("SUB on the inherited listener: frames differ (-want +got):\n%s", diff)
	}
}
