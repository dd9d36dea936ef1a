package config

import (
	"strings"

	"github.com/ringmaster-dev/ringmaster/sockets"
)

var socketKeys = []string{
	"host", "port", "path", "family", "type", "proto", "backlog", "umask",
	"replace", "so_reuseport", "blocking", "interface",
}

// readSocket reads one [socket:NAME] section; name is already lower-cased.
func readSocket(f *fields, name string) sockets.Spec {
	s := DefaultSocket(name)
	known := map[string]bool{}
	for _, k := range socketKeys {
		known[k] = true
	}
	for _, k := range f.sec.keys {
		if !known[k.name] {
			f.unknownKey(k.name, socketKeys)
		}
	}
	f.str("host", &s.Host)
	f.integer("port", &s.Port, 0, 65535)
	f.str("path", &s.Path)
	f.str("proto", &s.Proto)
	f.integer("backlog", &s.Backlog, 0, maxInt)
	// Octal, not Circus's decimal reading (umask = 022 meant 0o026 there).
	f.umask("umask", &s.Umask)
	f.boolean("replace", &s.Replace)
	f.boolean("so_reuseport", &s.ReusePort)
	f.boolean("blocking", &s.Blocking)
	f.str("interface", &s.Interface)
	if v, ok := f.get("family"); ok {
		switch u := strings.ToUpper(strings.TrimSpace(v)); u {
		case "AF_INET", "AF_INET6", "AF_UNIX":
			s.Family = u
		default:
			f.errorf("family", "%q is not a socket family (AF_INET, AF_INET6, AF_UNIX)", v)
		}
	}
	if v, ok := f.get("type"); ok {
		switch u := strings.ToUpper(strings.TrimSpace(v)); u {
		case "SOCK_STREAM", "SOCK_DGRAM", "SOCK_RAW", "SOCK_RDM", "SOCK_SEQPACKET":
			s.Type = u
		default:
			f.errorf("type", "%q is not a socket type (SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_RAW, SOCK_RDM)", v)
		}
	}
	switch {
	case s.Path != "":
		// As in Circus, a path makes it a unix socket whatever family says.
		s.Family = "AF_UNIX"
	case s.Family == "AF_UNIX":
		f.errorf("family", "AF_UNIX needs a path")
	}
	return s
}
