package config

import (
	"reflect"
	"strings"
)

// Diff is what changed between two configurations, by name. Watcher names
// compare case-insensitively, as Circus looks them up.
type Diff struct {
	// WatchersAdded, WatchersRemoved and WatchersChanged name watchers
	// (as written in the new file for added and changed ones, in the old
	// one for removed ones). A watcher is changed when any of its options
	// differ; one that only uses a changed socket is not listed here: the
	// arbiter decides what a socket change means for its users.
	WatchersAdded, WatchersRemoved, WatchersChanged []string
	// SocketsAdded, SocketsRemoved and SocketsChanged name sockets.
	SocketsAdded, SocketsRemoved, SocketsChanged []string
	// CircusChanged reports a change in the [circus] section. Unlike
	// Circus, Ringmaster never restarts watchers for it.
	CircusChanged bool
}

// Empty reports whether nothing changed.
func (d Diff) Empty() bool {
	return len(d.WatchersAdded)+len(d.WatchersRemoved)+len(d.WatchersChanged)+
		len(d.SocketsAdded)+len(d.SocketsRemoved)+len(d.SocketsChanged) == 0 && !d.CircusChanged
}

// Compare returns what changed from old to new.
func Compare(old, new *Config) Diff {
	var d Diff
	oldW := map[string]*Watcher{}
	for _, w := range old.Watchers {
		oldW[strings.ToLower(w.Name)] = w
	}
	seen := map[string]bool{}
	for _, w := range new.Watchers {
		key := strings.ToLower(w.Name)
		seen[key] = true
		switch o, ok := oldW[key]; {
		case !ok:
			d.WatchersAdded = append(d.WatchersAdded, w.Name)
		case !reflect.DeepEqual(o, w):
			d.WatchersChanged = append(d.WatchersChanged, w.Name)
		}
	}
	for _, w := range old.Watchers {
		if !seen[strings.ToLower(w.Name)] {
			d.WatchersRemoved = append(d.WatchersRemoved, w.Name)
		}
	}
	oldS := map[string]int{}
	for i, s := range old.Sockets {
		oldS[s.Name] = i
	}
	seenS := map[string]bool{}
	for _, s := range new.Sockets {
		seenS[s.Name] = true
		switch i, ok := oldS[s.Name]; {
		case !ok:
			d.SocketsAdded = append(d.SocketsAdded, s.Name)
		case old.Sockets[i] != s:
			d.SocketsChanged = append(d.SocketsChanged, s.Name)
		}
	}
	for _, s := range old.Sockets {
		if !seenS[s.Name] {
			d.SocketsRemoved = append(d.SocketsRemoved, s.Name)
		}
	}
	d.CircusChanged = !reflect.DeepEqual(old.Circus, new.Circus)
	return d
}
