package arbiter_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// A program that exits at once is not respawned in a tight loop: its
// replacements come at once, then 0.1, 0.2, 0.4 s... apart, until the
// flapping limit (Circus's meaning, its defaults here) stops it; and the
// watcher says that it will retry, and when (issue 14, item 4: 10
// respawns in 17 ms, then a plain "stopped").
func TestCrashLoopPacedRealProcess(t *testing.T) {
	t.Parallel()
	r := start(t, `
[watcher:crashy]
cmd = WORKER exit 1
`)
	w := r.Watcher("crashy")
	waitFor(t, "the flapping limit", 20*time.Second, func() bool { return len(r.events.Of(pubsub.Flapping)) > 0 })
	spawns := r.events.Of(pubsub.Spawn)
	if len(spawns) < 10 {
		t.Fatalf("%d spawns before the flapping limit, want 10", len(spawns))
	}
	// At least 0 + 0 + 0.1 + 0.2 between the first and the fourth.
	if gap := spawns[3].Time.Sub(spawns[0].Time); gap < 300*time.Millisecond {
		t.Errorf("4 spawns within %v, want the crash loop paced (at least 300ms)", gap)
	}
	st, err := w.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.State != arbiter.Stopped || !strings.HasPrefix(st.Detail, "flapping, retry 1 of 5 in ") || st.RetryAt.IsZero() {
		t.Errorf("Status after flapping: %v %q retry at %v; want stopped, flapping with the retry's time", st.State, st.Detail, st.RetryAt)
	}
	t.Logf("10 spawns over %v; %s", spawns[9].Time.Sub(spawns[0].Time).Round(time.Millisecond), st.Detail)
}
