package config

import (
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
)

// LogTarget is where the arbiter's own log goes ([circus] logoutput, or
// the arbiter's -log-output flag), read as Circus reads it: "-" or
// "stdout", "stderr", a file to append to, or syslog.
type LogTarget struct {
	// Kind is "stdout", "stderr", "file" or "syslog".
	Kind string
	// Path is the file to append to (file), or the local syslog's socket
	// (syslog without a host: /dev/log unless the URL names another).
	Path string
	// Addr is a remote syslog's host:port, reached over UDP (syslog with
	// a host; port 514 unless given).
	Addr string
	// Facility is the syslog facility's code: user (1) unless the URL's
	// query names another.
	Facility int
}

// syslogFacilities are the facility names Circus's syslog handler (Python's
// SysLogHandler) knows, and their codes (RFC 5424 §6.2.1).
var syslogFacilities = map[string]int{
	"kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "security": 4, "syslog": 5, "lpr": 6,
	"news": 7, "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11,
	"local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20, "local5": 21, "local6": 22, "local7": 23,
}

// ParseLogOutput reads a logoutput value. Syslog takes Circus's URLs:
// syslog://HOST[:PORT][?FACILITY] for a remote syslog over UDP,
// syslog:///PATH[?FACILITY] for a local one listening on the unix
// datagram socket PATH, and syslog:// or syslog://?FACILITY for the
// local /dev/log. Circus quietly uses user for a facility it does not
// know; this is an error here, as is any other shape.
func ParseLogOutput(s string) (LogTarget, error) {
	switch s {
	case "", "-", "stdout":
		return LogTarget{Kind: "stdout"}, nil
	case "stderr":
		return LogTarget{Kind: "stderr"}, nil
	}
	if !strings.HasPrefix(s, "syslog:") {
		return LogTarget{Kind: "file", Path: s}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Fragment != "" || strings.Contains(u.RawQuery, "=") {
		return LogTarget{}, fmt.Errorf("%q: want syslog://HOST[:PORT][?FACILITY], syslog:///PATH[?FACILITY] or syslog://[?FACILITY]", s)
	}
	t := LogTarget{Kind: "syslog", Facility: 1}
	if u.RawQuery != "" {
		f, ok := syslogFacilities[strings.ToLower(u.RawQuery)]
		if !ok {
			names := make([]string, 0, len(syslogFacilities))
			for n := range syslogFacilities {
				names = append(names, n)
			}
			slices.Sort(names)
			return LogTarget{}, fmt.Errorf("%q: unknown syslog facility %q (want one of %s)", s, u.RawQuery, strings.Join(names, ", "))
		}
		t.Facility = f
	}
	switch {
	case u.Host != "" && u.Path != "" && u.Path != "/":
		return LogTarget{}, fmt.Errorf("%q: a syslog URL names a host or a local socket's path, not both", s)
	case u.Host != "":
		port := u.Port()
		if port == "" {
			port = "514"
		}
		if u.Hostname() == "" {
			return LogTarget{}, fmt.Errorf("%q: the syslog host is empty", s)
		}
		t.Addr = net.JoinHostPort(u.Hostname(), port)
	case u.Path != "" && u.Path != "/":
		t.Path = u.Path
	default:
		t.Path = "/dev/log"
	}
	return t, nil
}

// logFormats are the arbiter's log formats ([circus] logformat, the
// -log-format flag).
var logFormats = []string{"text", "json"}

// CheckLogFormat reports whether format is one of the arbiter's log
// formats: text (slog's key=value lines) or json (one object a line).
func CheckLogFormat(format string) error {
	if !slices.Contains(logFormats, format) {
		return fmt.Errorf("%q is not a log format (text or json)", format)
	}
	return nil
}
