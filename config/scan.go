package config

import (
	"bytes"
	"strings"
)

// scanned is one file as Circus's parser (StrictConfigParser._read, a copy
// of Python 2's RawConfigParser) sees its structure: section headers and key
// lines with their line numbers. ini.v1 reads the values (see ini.go) but
// knows no line numbers, so this scan is what lets every error name a line.
type scanned struct {
	file     string
	sections []*scanSection // one per header line, repeats included
	// feed is the file as handed to ini.v1: blank lines, column-0 comments
	// and the lines Circus rejects are dropped, so that ini.v1 neither
	// aborts on a blank line inside a multi-line value nor sees a line we
	// already reported.
	feed []byte
}

type scanSection struct {
	name string
	line int
	keys []*scanKey
}

type scanKey struct {
	name  string
	line  int
	value []string // raw: the text after the delimiter, then continuation lines
}

// scan splits data into lines and classifies each as Circus's parser does.
// Lines Circus refuses (a key before any header, a line with no `=` or `:`)
// are reported and left out.
func scan(file string, data []byte, d *diag) *scanned {
	s := &scanned{file: file}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	var feed bytes.Buffer
	var sect *scanSection
	var key *scanKey
	for i, raw := range strings.Split(string(data), "\n") {
		lineno := i + 1
		line := strings.TrimSuffix(raw, "\r")
		if strings.TrimSpace(line) == "" || line[0] == '#' || line[0] == ';' || isRem(line) {
			continue
		}
		pos := Position{File: file, Line: lineno}
		if isSpace(line[0]) && key != nil {
			key.value = append(key.value, line)
			feed.WriteString(line + "\n")
			continue
		}
		if line[0] == '[' {
			// ini.v1 reads a header up to its last ']'; Python to its first.
			// They agree on every header with one ']'; take ini.v1's view so
			// that the names below are the ones it stores values under.
			end := strings.LastIndexByte(line, ']')
			if end <= 1 {
				d.errorf(pos, "", "", "malformed section header %q", line)
				sect, key = nil, nil
				continue
			}
			sect = &scanSection{name: line[1:end], line: lineno}
			s.sections = append(s.sections, sect)
			key = nil
			feed.WriteString("[" + sect.name + "]\n")
			continue
		}
		if sect == nil {
			d.errorf(pos, "", "", "%q is outside any [section]", strings.TrimSpace(line))
			continue
		}
		eq := strings.IndexAny(line, "=:")
		name := ""
		if eq > 0 {
			name = strings.TrimSpace(line[:eq])
		}
		if isSpace(line[0]) || name == "" {
			d.errorf(pos, sect.name, "", "%q is not a key = value line", strings.TrimSpace(line))
			key = nil
			continue
		}
		key = &scanKey{name: name, line: lineno, value: []string{line[eq+1:]}}
		sect.keys = append(sect.keys, key)
		feed.WriteString(line + "\n")
	}
	s.feed = feed.Bytes()
	return s
}

// isSpace is the indentation ini.v1 accepts for a continuation line.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\f' }

// isRem reports Python 2's "rem" comment: a first word of "rem" in any case,
// starting in column 0 with r or R.
func isRem(line string) bool {
	f := strings.Fields(line)
	return len(f) > 0 && strings.EqualFold(f[0], "rem") && (line[0] == 'r' || line[0] == 'R')
}

// cleanValue applies Circus's value rules to a raw value (first line as
// written after the delimiter, then continuation lines): on the first line
// only, a ';' is a comment when whitespace precedes it; every line is
// trimmed, empty continuation lines are dropped, and `""` means empty.
func cleanValue(lines []string) string {
	first := strings.TrimLeft(lines[0], " \t\f")
	if i := strings.IndexByte(first, ';'); i >= 0 {
		// Python checks optval[pos-1], which for pos 0 is the last
		// character; copy that, it decides `key = ;x` (kept).
		prev := first[len(first)-1]
		if i > 0 {
			prev = first[i-1]
		}
		if isSpace(prev) {
			first = first[:i]
		}
	}
	out := []string{strings.TrimSpace(first)}
	for _, l := range lines[1:] {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	v := strings.Join(out, "\n")
	if v == `""` {
		return ""
	}
	return v
}
