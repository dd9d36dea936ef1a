package config

import "github.com/ringmaster-dev/ringmaster/internal/suggest"

// unknownKey warns about a key the section does not know, suggesting the
// closest known one.
func (f *fields) unknownKey(key string, known []string) {
	if s, ok := suggest.Closest(key, known); ok {
		f.warnf(key, "unknown key; did you mean %s?", s)
		return
	}
	f.warnf(key, "unknown key, ignored")
}
