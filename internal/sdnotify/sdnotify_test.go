package sdnotify

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen binds a datagram socket at path, as a service manager does, and
// returns a function reading the next message.
func listen(t *testing.T, path string) func() string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return func() string {
		t.Helper()
		buf := make([]byte, 4096)
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading the notification socket: %v", err)
		}
		return string(buf[:n])
	}
}

func TestSend(t *testing.T) {
	for _, tc := range []struct{ name, path string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@ringmaster-sdnotify-test-" + strconv.Itoa(os.Getpid())},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := listen(t, tc.path)
			n, err := New(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Send("READY=1", "STATUS=2 watchers active"); err != nil {
				t.Fatal(err)
			}
			if got, want := next(), "READY=1\nSTATUS=2 watchers active"; got != want {
				t.Errorf("message = %q, want %q", got, want)
			}
		})
	}
}

func TestSendErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "notify")
	next := listen(t, path)
	n, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"READY=1\nSTOPPING=1", "READY"} {
		if err := n.Send(bad); err == nil || !strings.Contains(err.Error(), "NAME=value") {
			t.Errorf("Send(%q) = %v, want a NAME=value error", bad, err)
		}
	}
	// Nothing was sent for the refused ones.
	if err := n.Send("STATUS=after"); err != nil {
		t.Fatal(err)
	}
	if got := next(); got != "STATUS=after" {
		t.Errorf("message = %q, want STATUS=after", got)
	}

	gone, err := New(filepath.Join(dir, "nobody-listens"))
	if err != nil {
		t.Fatal(err)
	}
	if err := gone.Send("READY=1"); err == nil {
		t.Error("Send to a socket nobody bound = nil, want an error")
	}
}

// A manager that stops reading its socket fills the queue (net.unix.
// max_dgram_qlen datagrams); a send then gives up rather than wait for it.
func TestSendToStuckManager(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	listen(t, path) // bound, never read
	n, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10000 {
		err := n.Send("WATCHDOG=1")
		if err == nil {
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("send %d = %v, want a timeout", i, err)
		}
		return
	}
	t.Fatal("10000 sends to a socket nobody reads all succeeded")
}

func TestNew(t *testing.T) {
	for _, tc := range []struct{ path, err string }{
		{"", "empty"},
		{"relative/notify", "absolute path or @name"},
		{"/run/systemd/notify", ""},
		{"@abstract", ""},
	} {
		t.Run(tc.path, func(t *testing.T) {
			_, err := New(tc.path)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Errorf("New(%q) = %v, want error containing %q", tc.path, err, tc.err)
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if n, err := FromEnv(); n != nil || err != nil {
		t.Errorf("FromEnv() without NOTIFY_SOCKET = %v, %v; want nil, nil", n, err)
	}
	t.Setenv("NOTIFY_SOCKET", "@x")
	if n, err := FromEnv(); n == nil || err != nil {
		t.Errorf("FromEnv() with NOTIFY_SOCKET=@x = %v, %v; want a Notifier", n, err)
	}
}

func TestWatchdogInterval(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name, usec, pid string
		want            time.Duration
		err             string
	}{
		{name: "unset"},
		{name: "set", usec: "30000000", want: 30 * time.Second},
		{name: "our pid", usec: "200000", pid: me, want: 200 * time.Millisecond},
		{name: "another pid", usec: "200000", pid: "1"},
		{name: "zero", usec: "0", err: "WATCHDOG_USEC"},
		{name: "not a number", usec: "30s", err: "WATCHDOG_USEC"},
		{name: "too large", usec: "18446744073709551615", err: "WATCHDOG_USEC"},
		{name: "bad pid", usec: "200000", pid: "me", err: "WATCHDOG_PID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("WATCHDOG_USEC", tc.usec)
			t.Setenv("WATCHDOG_PID", tc.pid)
			got, err := WatchdogInterval()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("WatchdogInterval() = %v, %v; want an error naming %s", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("WatchdogInterval() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestMonotonic(t *testing.T) {
	a, b := Monotonic(), Monotonic()
	parse := func(s string) int64 {
		v, ok := strings.CutPrefix(s, "MONOTONIC_USEC=")
		n, err := strconv.ParseInt(v, 10, 64)
		if !ok || err != nil || n <= 0 {
			t.Fatalf("Monotonic() = %q, want MONOTONIC_USEC=<positive>", s)
		}
		return n
	}
	if parse(b) < parse(a) {
		t.Errorf("Monotonic() went backwards: %s then %s", a, b)
	}
}
