package commands_test

import (
	"context"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/control/commands"
)

// Late answers "starting" until its Table is set, then is the Table, both
// through Handle and through Accept.
func TestLate(t *testing.T) {
	t.Parallel()
	var l commands.Late
	checkErr(t, "list before Set", l.Handle(context.Background(), request(t, "list", "")),
		control.CommandError, "the arbiter is starting; try again")

	e := start(t, "[watcher:manual]\ncmd = WORKER sleep\nautostart = false\n")
	l.Set(e.tab)
	want := `{"status": "ok", "time": 1700000000.5, "watchers": ["manual"], "id": 1}`
	if got := render(t, l.Handle(context.Background(), request(t, "list", ""))); got != want {
		t.Errorf("Handle(list) after Set =\n%s\nwant\n%s", got, want)
	}
	if got := render(t, l.Accept(request(t, "list", ""))(context.Background())); got != want {
		t.Errorf("Accept(list) after Set =\n%s\nwant\n%s", got, want)
	}
}

// With Wait, a request that comes before the Table waits for it and is
// answered by it once set; one that waits longer than Wait is refused.
func TestLateWaits(t *testing.T) {
	t.Parallel()
	l := &commands.Late{Wait: time.Minute}
	answer := make(chan string, 1)
	run := l.Accept(request(t, "list", ""))
	go func() { answer <- render(t, run(context.Background())) }()
	e := start(t, "[watcher:manual]\ncmd = WORKER sleep\nautostart = false\n")
	l.Set(e.tab)
	want := `{"status": "ok", "time": 1700000000.5, "watchers": ["manual"], "id": 1}`
	if got := <-answer; got != want {
		t.Errorf("a list that waited for Set =\n%s\nwant\n%s", got, want)
	}
	short := &commands.Late{Wait: time.Millisecond}
	checkErr(t, "list with no Table within Wait", short.Handle(context.Background(), request(t, "list", "")),
		control.CommandError, "the arbiter is starting; try again")
}
