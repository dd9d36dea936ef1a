package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
)

// arbiterLog is the arbiter's own log: where it goes, and the copy of its
// recent lines that `circusctl logs` shows.
type arbiterLog struct {
	*slog.Logger
	journal *logs.Journal
	close   func()
}

// logSettings are the arbiter's log output and format: from the flag, else
// the file, else the default. A bad flag is a usage error (the file's were
// checked as it loaded).
func logSettings(f flags, cfg *config.Config) (output, format string, err error) {
	output = firstOf(f.logOutput, cfg.Circus.LogOutput, "-")
	if _, err := config.ParseLogOutput(output); err != nil {
		return "", "", fmt.Errorf("-log-output: %w", err)
	}
	format = firstOf(f.logFormat, cfg.Circus.LogFormat, "text")
	if err := config.CheckLogFormat(format); err != nil {
		return "", "", fmt.Errorf("-log-format: %w", err)
	}
	return output, format, nil
}

// openLog opens the arbiter's log on output (Circus's logoutput forms) in
// format (text or json) at level. The journal always keeps text lines
// without their time (each line of logs carries its own).
func openLog(output, format string, level slog.Level) (*arbiterLog, error) {
	if err := config.CheckLogFormat(format); err != nil {
		return nil, fmt.Errorf("log format: %w", err)
	}
	target, err := config.ParseLogOutput(output)
	if err != nil {
		return nil, fmt.Errorf("log output: %w", err)
	}
	l := &arbiterLog{journal: logs.NewJournal(), close: func() {}}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch target.Kind {
	case "stdout", "stderr", "file":
		w := io.Writer(os.Stdout)
		switch target.Kind {
		case "stderr":
			w = os.Stderr
		case "file":
			f, err := os.OpenFile(target.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				return nil, fmt.Errorf("log output: %w", err)
			}
			w, l.close = f, func() { f.Close() }
		}
		h = newHandler(w, format, opts)
	case "syslog":
		s, err := dialSyslog(target, format)
		if err != nil {
			return nil, fmt.Errorf("log output %s: %w", output, err)
		}
		// syslog stamps each message with its own time.
		o := *opts
		o.ReplaceAttr = dropTime
		h = &syslogHandler{h: newHandler(s, format, &o), w: s}
		l.close = s.Close
	}
	kept := slog.NewTextHandler(l.journal, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime})
	l.Logger = slog.New(slog.NewMultiHandler(h, kept))
	return l, nil
}

func newHandler(w io.Writer, format string, opts *slog.HandlerOptions) slog.Handler {
	if format == "json" {
		return slog.NewJSONHandler(w, opts)
	}
	return slog.NewTextHandler(w, opts)
}

func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}

// syslogHandler formats records with h, whose output is the syslog writer
// w, and gives w each record's priority: w.Write is called from inside
// h.Handle, under mu.
type syslogHandler struct {
	h slog.Handler
	w *syslogWriter
}

func (s *syslogHandler) Enabled(ctx context.Context, l slog.Level) bool { return s.h.Enabled(ctx, l) }

func (s *syslogHandler) Handle(ctx context.Context, r slog.Record) error {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	s.w.severity = severity(r.Level)
	return s.h.Handle(ctx, r)
}

func (s *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &syslogHandler{h: s.h.WithAttrs(as), w: s.w}
}

func (s *syslogHandler) WithGroup(name string) slog.Handler {
	return &syslogHandler{h: s.h.WithGroup(name), w: s.w}
}

// severity is syslog's for a slog level (RFC 5424 §6.2.1): err, warning,
// info, debug.
func severity(l slog.Level) int {
	switch {
	case l >= slog.LevelError:
		return 3
	case l >= slog.LevelWarn:
		return 4
	case l >= slog.LevelInfo:
		return 6
	}
	return 7
}

// syslogQueue bounds the messages waiting for the syslog daemon, and
// syslogWait how long one send may take before it is given up.
const (
	syslogQueue = 1024
	syslogWait  = time.Second
)

// syslogWriter sends each line to a syslog daemon as one datagram, in the
// format of syslog(3) (RFC 3164): "<PRI>Mmm dd hh:mm:ss ringmaster[PID]: ",
// with the host's name after the time for a remote daemon. The arbiter's
// loops log, so a send never waits: messages queue for one sender
// goroutine, and when the daemon falls behind the queue's bound, messages
// are dropped and the next one sent says how many.
type syslogWriter struct {
	network, addr string
	facility      int
	host          string // "" for a local daemon
	json          bool   // the lines' format, for the note of those dropped
	pid           int

	queue   chan []byte
	dropped atomic.Uint64
	done    chan struct{}
	conn    net.Conn // the sender's

	mu       sync.Mutex // held by syslogHandler.Handle around Write, and by Close
	severity int
	closed   bool
}

// dialSyslog connects to the syslog daemon t names, so that a wrong path
// fails at start-up, and starts the sender.
func dialSyslog(t config.LogTarget, format string) (*syslogWriter, error) {
	s := &syslogWriter{network: "unixgram", addr: t.Path, facility: t.Facility, pid: os.Getpid(), json: format == "json",
		queue: make(chan []byte, syslogQueue), done: make(chan struct{}), severity: 6}
	if t.Addr != "" {
		s.network, s.addr = "udp", t.Addr
		s.host, _ = os.Hostname()
	}
	conn, err := net.DialTimeout(s.network, s.addr, syslogWait)
	if err != nil {
		return nil, err
	}
	s.conn = conn
	go s.send()
	return s, nil
}

// Write queues p (one formatted record) as a message; it never blocks.
// Its caller holds mu.
func (s *syslogWriter) Write(p []byte) (int, error) {
	if s.closed {
		return 0, os.ErrClosed
	}
	select {
	case s.queue <- s.message(s.severity, bytes.TrimSuffix(p, []byte{'\n'})):
	default:
		s.dropped.Add(1)
	}
	return len(p), nil
}

// message is msg as a syslog message of severity sev.
func (s *syslogWriter) message(sev int, msg []byte) []byte {
	b := make([]byte, 0, 64+len(msg))
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(s.facility*8+sev), 10)
	b = append(b, '>')
	b = time.Now().AppendFormat(b, time.Stamp)
	if s.host != "" {
		b = append(b, ' ')
		b = append(b, s.host...)
	}
	b = append(b, " ringmaster["...)
	b = strconv.AppendInt(b, int64(s.pid), 10)
	b = append(b, "]: "...)
	return append(b, msg...)
}

// send owns the connection: it sends what is queued until Close, and
// dials again after a failure (the daemon restarted).
func (s *syslogWriter) send() {
	defer close(s.done)
	defer func() {
		if s.conn != nil {
			s.conn.Close()
		}
	}()
	for b := range s.queue {
		if n := s.dropped.Load(); n > 0 {
			note := fmt.Appendf(nil, "level=WARN msg=\"log lines dropped: syslog did not take them\" dropped=%d", n)
			if s.json {
				note = fmt.Appendf(nil, `{"level":"WARN","msg":"log lines dropped: syslog did not take them","dropped":%d}`, n)
			}
			if s.write(s.message(4, note)) {
				s.dropped.Add(^(n - 1)) // minus n: more may have come meanwhile
			}
		}
		if !s.write(b) {
			s.dropped.Add(1)
		}
	}
}

// write sends one message, dialling again first if the last send failed.
func (s *syslogWriter) write(b []byte) bool {
	if s.conn == nil {
		c, err := net.DialTimeout(s.network, s.addr, syslogWait)
		if err != nil {
			return false
		}
		s.conn = c
	}
	s.conn.SetWriteDeadline(time.Now().Add(syslogWait))
	if _, err := s.conn.Write(b); err != nil {
		s.conn.Close()
		s.conn = nil
		return false
	}
	return true
}

// Close sends what is queued, giving up after a few seconds, and stops
// the sender.
func (s *syslogWriter) Close() {
	s.mu.Lock()
	s.closed = true
	close(s.queue)
	s.mu.Unlock()
	select {
	case <-s.done:
	case <-time.After(3 * syslogWait):
	}
}
