package zmqpub

import (
	"context"
	"strconv"
	"testing"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// Our own subscriber (circusctl listen and top) goes on across an
// in-place upgrade: the exec drops its connection, and Recv does not
// return that end but waits for what comes through the connection the
// socket dials again, to the listener that was never closed, and the
// subscription it sends again (issue 18). The exec is played in process,
// as in TestLibzmqReconnectsAcrossHandover. Not parallel: the inherited
// table is the process's.
func TestDialRecvAcrossHandover(t *testing.T) {
	endpoint := "tcp://127.0.0.1:" + strconv.Itoa(testproc.FreePort(t))
	old, err := Listen(endpoint, SinkOptions{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Dial(ctx, endpoint, "watcher.web.")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitSubscribed(t, old, 1, 1)

	s := handOverSink(t, old, endpoint)
	waitSubscribed(t, s, 1, 1)
	ev := pubsub.Event{Kind: pubsub.Start, Watcher: "web"}
	s.Send(pubsub.Topic(ev), pubsub.Body(ev))
	topic, body, err := c.Recv()
	if err != nil || topic != "watcher.web.start" || string(body) != string(pubsub.Body(ev)) {
		t.Errorf("Recv() after the hand-over = %q, %s, %v; want watcher.web.start, %s", topic, body, err, pubsub.Body(ev))
	}
}
