package config

import (
	"strings"
)

// Expand replaces Circus's substitutions in s: $(circus.X) and ((circus.X)),
// with "circus" in any case, and the legacy $WID. lookup receives the
// lower-cased text after "circus." ("wid", "sockets.web", "env.path",
// "numprocesses"; "wid" for $WID) and reports whether it knows it; unknown
// variables are left as written, as Circus does.
//
// Load applies Expand with a lookup that knows only env.*; the arbiter calls
// it again at spawn with wid, sockets.* and the watcher's options.
func Expand(s string, lookup func(key string) (string, bool)) string {
	if !strings.Contains(s, "$") && !strings.Contains(s, "((") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		if key, n := reference(s[i:]); n > 0 {
			if v, ok := lookup(key); ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+n])
			}
			i += n
			continue
		}
		if strings.HasPrefix(s[i:], "$WID") && !isNameByte(s, i+4) {
			if v, ok := lookup("wid"); ok {
				b.WriteString(v)
				i += 4
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

// reference reports whether s starts with a substitution, returning its
// lower-cased key and its length in bytes.
func reference(s string) (key string, n int) {
	var closing string
	switch {
	case strings.HasPrefix(s, "$("):
		closing = ")"
	case strings.HasPrefix(s, "(("):
		closing = "))"
	default:
		return "", 0
	}
	const prefix = "circus."
	rest := s[2:]
	if len(rest) < len(prefix) || !strings.EqualFold(rest[:len(prefix)], prefix) {
		return "", 0
	}
	j := len(prefix)
	for j < len(rest) && isVarByte(rest[j]) {
		j++
	}
	if j == len(prefix) || !strings.HasPrefix(rest[j:], closing) {
		return "", 0
	}
	return strings.ToLower(rest[len(prefix):j]), 2 + j + len(closing)
}

// isVarByte is a character of a substitution name: Circus's [\w.-].
func isVarByte(c byte) bool {
	return c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isNameByte(s string, i int) bool {
	return i < len(s) && (s[i] == '_' || s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z')
}

// references returns the keys of every substitution in s, in order.
func references(s string) []string {
	var keys []string
	for i := 0; i < len(s); i++ {
		if key, n := reference(s[i:]); n > 0 {
			keys = append(keys, key)
			i += n - 1
		}
	}
	return keys
}

// SocketRefs returns the lower-cased names of the sockets that cmd, args and
// shell_args reference as $(circus.sockets.NAME), each once, in the order
// first seen: the sockets this watcher's children must inherit.
func (w *Watcher) SocketRefs() []string {
	var names []string
	seen := map[string]bool{}
	for _, s := range []string{w.Cmd, w.Args, w.ShellArgs} {
		for _, key := range references(s) {
			name, ok := strings.CutPrefix(key, "sockets.")
			if ok && name != "" && !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	return names
}

// envLookup answers circus.env.NAME from env, ignoring case as Circus does
// (it lower-cases the whole reference). When two variables differ only in
// case, the one added last wins.
type envLookup map[string]string

func (e envLookup) add(env map[string]string, order []string) {
	for _, k := range order {
		e[strings.ToLower(k)] = env[k]
	}
}

func (e envLookup) lookup(key string) (string, bool) {
	name, ok := strings.CutPrefix(key, "env.")
	if !ok {
		return "", false
	}
	v, ok := e[name]
	return v, ok
}

func (e envLookup) clone() envLookup {
	c := make(envLookup, len(e))
	for k, v := range e {
		c[k] = v
	}
	return c
}
