package e2e

import (
	"context"
	"encoding/json"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// A subscriber that never reads, while workers die and respawn as fast as
// they can, costs the others nothing: respawns stay prompt, a reading
// subscriber misses no event, memory stays bounded, and the stuck
// subscriber's drop count rises.
func TestStuckSubscriberUnderChurn(t *testing.T) {
	s := runStream(t, `
[watcher:churn]
cmd = /bin/true
numprocesses = 16
check_flapping = false

[watcher:probe]
cmd = WORKER sleep
check_flapping = false
`, zmqpub.SinkOptions{QueueSize: 100, SendBuffer: 4096})
	endpoint := s.sink.Addr()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	stuckSubscriber(t, endpoint)
	reader, err := zmqpub.Dial(ctx, endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var got, gaps atomic.Int64
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		var last uint64
		for {
			_, body, err := reader.Recv()
			if err != nil {
				return
			}
			var v struct{ Seq uint64 }
			if json.Unmarshal(body, &v) == nil {
				// Every event, numbered by the Bus without gaps.
				if last != 0 && v.Seq != last+1 {
					gaps.Add(1)
				}
				last = v.Seq
			}
			got.Add(1)
		}
	}()
	testproc.WaitFor(t, "both subscribers connected", 10*time.Second, func() bool { return s.sink.Stats().Subscribers == 2 })

	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	startSeq := s.bus.Seq()
	// Let the churn run until the stuck subscriber's buffers (ours and the
	// kernel's) are full and events are dropped for it; meanwhile the
	// probe's worker is killed now and then and must come back at once.
	stuckDropped := func() uint64 {
		var d uint64
		for _, p := range s.sink.Stats().Peers {
			d = max(d, p.Dropped)
		}
		return d
	}
	var worst time.Duration
	kills := 0
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && (kills < 10 || stuckDropped() == 0); kills++ {
		old := s.pids(t, "probe")
		if len(old) != 1 {
			continue
		}
		begin := time.Now()
		_ = syscall.Kill(old[0], syscall.SIGKILL)
		testproc.WaitFor(t, "the probe respawned", 10*time.Second, func() bool {
			p := s.pids(t, "probe")
			return len(p) == 1 && !slices.Contains(old, p[0])
		})
		worst = max(worst, time.Since(begin))
		time.Sleep(100 * time.Millisecond) // pace the kills; the churn goes on meanwhile
	}
	published := s.bus.Seq() - startSeq
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)

	dropped := stuckDropped()
	t.Logf("%d events published over %d probe kills; reader got %d; stuck subscriber dropped %d; worst probe respawn %s; heap %d -> %d KiB",
		published, kills, got.Load(), dropped, worst, before.HeapInuse>>10, after.HeapInuse>>10)
	if dropped == 0 {
		t.Errorf("the stuck subscriber dropped nothing; want its drop count to rise")
	}
	if gaps.Load() != 0 {
		t.Errorf("the reading subscriber saw %d gaps in the sequence numbers; want none", gaps.Load())
	}
	// A stall, not a speed target: a prompt respawn takes milliseconds.
	if worst > 2*time.Second {
		t.Errorf("a respawn took %s under churn with a stuck subscriber", worst)
	}
	if grown := int64(after.HeapInuse) - int64(before.HeapInuse); grown > 64<<20 {
		t.Errorf("heap grew by %d MiB while a subscriber was stuck", grown>>20)
	}
	cancel()
	reader.Close()
	<-readDone
}
