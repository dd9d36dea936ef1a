package arbiter_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
)

// reloadLog is a ReloadObserver that writes down what it is told.
type reloadLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *reloadLog) ReloadBegin() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, "begin")
}

func (l *reloadLog) ReloadEnd(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls = append(l.calls, fmt.Sprintf("end %v", err != nil))
}

func (l *reloadLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.calls, ", ")
}

// Every reload that runs, applied or failed, is announced to the observer
// before and after (sd_notify's RELOADING=1 and READY=1 hang on it), and
// told whether it failed.
func TestReloadObserver(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	const ini = `
[watcher:w]
cmd = WORKER sleep
numprocesses = %d
`
	obs := &reloadLog{}
	lb := &arbtest.LogBuf{T: t}
	a, err := arbiter.New(loadINI(t, fmt.Sprintf(ini, 1)), arbiter.Options{
		Logger: slog.New(slog.NewTextHandler(lb, nil)), Reloads: obs,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-a.Started()
	if got := obs.String(); got != "" {
		t.Errorf("observer told %q before any reload, want nothing", got)
	}

	if err := a.Reload(ctx, loadINI(t, fmt.Sprintf(ini, 2))); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	bad := loadINI(t, fmt.Sprintf(ini+"\n[socket:s]\nhost = 127.0.0.1\nport = %d\n", 2, busy.Addr().(*net.TCPAddr).Port))
	if err := a.Reload(ctx, bad); err == nil {
		t.Fatal("Reload onto a port in use = nil, want an error")
	}
	if got, want := obs.String(), "begin, end false, begin, end true"; got != want {
		t.Errorf("observer told %q, want %q", got, want)
	}
}
