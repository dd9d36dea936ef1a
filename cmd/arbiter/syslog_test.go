package main

import (
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// syslogDaemon listens where a local syslog daemon would; it reads only
// once read is called.
type syslogDaemon struct {
	conn *net.UnixConn
	got  chan string
}

func listenSyslog(t *testing.T, path string) *syslogDaemon {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &syslogDaemon{conn: c, got: make(chan string, 1<<16)}
}

// read reads every message from now on, until the socket is closed.
func (d *syslogDaemon) read(t *testing.T) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for {
			n, err := d.conn.Read(buf)
			if err != nil {
				return
			}
			d.got <- string(buf[:n])
		}
	}()
	t.Cleanup(func() {
		d.conn.Close()
		<-done
	})
}

// droppedNote matches the note of lines dropped, in text or json.
var droppedNote = regexp.MustCompile(`log lines dropped: syslog did not take them(?:" dropped=|","dropped":)(\d+)}?$`)

// collect takes messages until want of the test's own have come (those
// not dropped) and returns how many came and how many the notes said
// were dropped.
func (d *syslogDaemon) collect(t *testing.T, want int, format string) (got, dropped int) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for got+dropped < want {
		select {
		case m := <-d.got:
			if n := droppedNote.FindStringSubmatch(m); n != nil {
				k, _ := strconv.Atoi(n[1])
				dropped += k
				if !strings.HasPrefix(m, "<12>") {
					t.Errorf("note %q: want priority user.warning, 12", m)
				}
				if _, body, _ := strings.Cut(m, "]: "); format == "json" && !json.Valid([]byte(body)) {
					t.Errorf("note %q: want a JSON object, as the lines are", m)
				}
				continue
			}
			got++
		case <-timeout:
			t.Fatalf("%d messages and %d dropped after 20s, want %d in all", got, dropped, want)
		}
	}
	return got, dropped
}

func openSyslog(t *testing.T, path, format string) (*slog.Logger, *syslogWriter) {
	t.Helper()
	w, err := dialSyslog(config.LogTarget{Kind: "syslog", Path: path, Facility: 1}, format)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Close)
	return slog.New(&syslogHandler{h: newHandler(w, format, &slog.HandlerOptions{ReplaceAttr: dropTime}), w: w}), w
}

// A syslog daemon that stops reading never holds the arbiter up: its
// messages queue, past the queue's bound they are dropped, and when the
// daemon reads again it is told how many.
func TestSyslogStuckDaemon(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		t.Run(format, func(t *testing.T) { stuckDaemon(t, format) })
	}
}

func stuckDaemon(t *testing.T, format string) {
	path := filepath.Join(t.TempDir(), "log")
	d := listenSyslog(t, path)
	log, w := openSyslog(t, path, format)
	const n = 3 * syslogQueue
	for i := range n {
		log.Info("line", "i", i)
	}
	// Had a line waited for syslog, none would have been dropped.
	if w.dropped.Load() == 0 {
		t.Fatalf("none of %d lines dropped although syslog read none", n)
	}
	d.read(t)
	log.Info("after")
	got, dropped := d.collect(t, n+1, format)
	t.Logf("%d lines: %d sent, %d dropped", n+1, got, dropped)
}

// A syslog daemon that goes away and comes back (restarted) gets the
// messages again, with a note of those lost meanwhile.
func TestSyslogDaemonRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	d := listenSyslog(t, path)
	d.read(t)
	log, w := openSyslog(t, path, "text")
	log.Info("before")
	if got, _ := d.collect(t, 1, "text"); got != 1 {
		t.Fatalf("got %d messages, want 1", got)
	}
	d.conn.Close() // the daemon stops: its socket file stays, refusing
	for i := range 3 {
		log.Info("while away", "i", i)
	}
	testproc.WaitFor(t, "the lost lines counted", 20*time.Second, func() bool { return w.dropped.Load() == 3 })
	// It comes back at the same path.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	d2 := listenSyslog(t, path)
	d2.read(t)
	log.Info("back")
	got, dropped := d2.collect(t, 4, "text")
	if got != 1 || dropped != 3 {
		t.Errorf("after the restart: %d messages, %d dropped; want 1 and 3", got, dropped)
	}
}
