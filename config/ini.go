package config

import (
	"strings"

	"gopkg.in/ini.v1"
)

// iniOptions make ini.v1 read the way Circus's parser does (see
// /work/shared/reference/go-deps.md §3): values are raw (no inline '#'
// comments, no '\' continuation, quotes kept), indented lines continue a
// value, a repeated key is kept as a shadow so that the first one can win,
// and a '.' in a section name ([socket:web.v2]) does not make it a child
// section that inherits keys.
var iniOptions = ini.LoadOptions{
	AllowPythonMultilineValues: true,
	IgnoreInlineComment:        true,
	IgnoreContinuation:         true,
	PreserveSurroundedQuote:    true,
	AllowShadows:               true,
	ChildSectionDelimiter:      "\x00",
}

// rawKey is one key with the value that wins (the first one read).
type rawKey struct {
	name  string
	value string
	pos   Position
}

// rawSection is a section merged over its repeats and over files, in the
// order its keys were first read.
type rawSection struct {
	name    string
	pos     Position   // the first header
	repeats []Position // every later header with exactly this name
	keys    []*rawKey
	index   map[string]*rawKey
}

func (s *rawSection) get(key string) (*rawKey, bool) {
	k, ok := s.index[key]
	return k, ok
}

// raw is every section of the main file and its includes, merged.
type raw struct {
	sections []*rawSection
	byName   map[string]*rawSection
}

func newRaw() *raw { return &raw{byName: map[string]*rawSection{}} }

func (r *raw) section(name string) (*rawSection, bool) {
	s, ok := r.byName[name]
	return s, ok
}

// add reads one file into r. Files are added main file first: a key already
// set, by this file or an earlier one, keeps its value, as in Circus.
func (r *raw) add(file string, data []byte, d *diag) {
	sc := scan(file, data, d)
	// ini.v1 fails only on input Circus accepts (an unclosed `"""` or
	// backquote); the scan's own values are Circus's, so use them then.
	f, err := ini.LoadSources(iniOptions, sc.feed)
	if err != nil {
		f = nil
	}
	for _, ss := range sc.sections {
		pos := Position{File: file, Line: ss.line}
		rs, ok := r.byName[ss.name]
		if !ok {
			rs = &rawSection{name: ss.name, pos: pos, index: map[string]*rawKey{}}
			r.byName[ss.name] = rs
			r.sections = append(r.sections, rs)
		} else {
			rs.repeats = append(rs.repeats, pos)
		}
		for _, k := range ss.keys {
			kpos := Position{File: file, Line: k.line}
			if prev, dup := rs.index[k.name]; dup {
				if prev.pos.File == file {
					d.warnf(kpos, ss.name, k.name, "repeated key ignored: the first value (line %d) wins", prev.pos.Line)
				}
				continue
			}
			rk := &rawKey{name: k.name, value: iniValue(f, ss.name, k), pos: kpos}
			rs.index[k.name] = rk
			rs.keys = append(rs.keys, rk)
		}
	}
}

// iniValue is the first value of key in section as ini.v1 read it, with
// Circus's post-processing. ini.v1 gives a value starting with a backquote
// or `"""` its own quoting meaning (“`which python` app.py” would become
// “which python”); Circus takes it literally, so there the scan's value is
// used, as it is when ini.v1 did not see the key at all.
func iniValue(f *ini.File, section string, k *scanKey) string {
	first := strings.TrimLeft(k.value[0], " \t\f")
	if f == nil || strings.HasPrefix(first, "`") || strings.HasPrefix(first, `"""`) {
		return cleanValue(k.value)
	}
	sec, err := f.GetSection(section)
	if err != nil || !sec.HasKey(k.name) {
		return cleanValue(k.value)
	}
	key, err := sec.GetKey(k.name)
	if err != nil {
		return cleanValue(k.value)
	}
	// ValueWithShadows drops empty values, so it cannot tell an empty
	// first value from a missing one: trust the scan for that case.
	vals := key.ValueWithShadows()
	if len(vals) == 0 || cleanValue(k.value) == "" {
		return cleanValue(k.value)
	}
	return cleanValue(strings.Split(vals[0], "\n"))
}
