package zmqpub

import (
	"path/filepath"
	"strconv"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

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

// A libzmq subscriber, whose connection the exec of an upgrade drops,
// reconnects by itself to the listener that was never closed, and
// subscribes again to the Sink of the new image: events published after
// the hand-over reach it. The exec is played in process: the listener's
// fd outlives the old Sink as it outlives the old image.
func TestLibzmqReconnectsAcrossHandover(t *testing.T) {
	needPyzmq(t)
	endpoint := "tcp://127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	old, err := Listen(endpoint, SinkOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	evs := oneOfEachKind()
	w := want(evs, "watcher.web.")
	py := startPySub(t, endpoint, len(w), "watcher.web.")
	waitSubscribed(t, old, 1, 1)

	s := handOverSink(t, old, endpoint)
	waitSubscribed(t, s, 1, 1)
	for _, ev := range evs {
		s.Send(pubsub.Topic(ev), pubsub.Body(ev))
	}
	if diff := cmp.Diff(w, py()); diff != "" {
		t.Errorf("libzmq SUB after the hand-over: frames differ (-want +got):\n%s", diff)
	}
}

// handOverSink plays an upgrade's exec in process: old's listener is
// handed over (an fd that outlives old, as it outlives the old image),
// old is closed, dropping every connection, and the Sink of the new image
// on endpoint takes the listener. The new Sink is closed at the test's end.
func handOverSink(t *testing.T, old *Sink, endpoint string) *Sink {
	t.Helper()
	key := "zmq " + endpoint
	fds, err := handover.Listeners()
	if err != nil {
		t.Fatalf("Listeners() = %v", err)
	}
	fd, err := unix.Dup(fds[key])
	handover.ListenersBack()
	if err != nil {
		t.Fatalf("dup the listener %q (%v): %v", key, fds, err)
	}
	old.Close()
	handover.Inherit(map[string]int{key: fd})
	t.Cleanup(func() { handover.Inherit(nil) })
	s, err := Listen(endpoint, SinkOptions{Logger: testLogger(t)})
	if err != nil {
		unix.Close(fd)
		t.Fatalf("Listen(%q) = %v", endpoint, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
