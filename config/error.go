package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Error is one problem found in a configuration: fatal when returned by
// [Load] or [Parse], advisory when it sits in [Config.Warnings]. Every field
// but Msg may be empty when it does not apply (a file that cannot be read has
// no line).
type Error struct {
	File    string
	Line    int
	Section string // as written in the file: "watcher:api"
	Key     string
	Msg     string
}

// Error formats e as "FILE:LINE: [SECTION] KEY: MSG", leaving out the parts
// that are empty.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	}
	if e.Section != "" {
		b.WriteString("[" + e.Section + "] ")
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// diag collects the errors and warnings of one load, so that a single pass
// reports every problem instead of stopping at the first.
type diag struct {
	errs     []error
	warnings []*Error
}

func (d *diag) errorf(p Position, section, key, format string, args ...any) {
	d.errs = append(d.errs, &Error{File: p.File, Line: p.Line, Section: section, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (d *diag) warnf(p Position, section, key, format string, args ...any) {
	d.warnings = append(d.warnings, &Error{File: p.File, Line: p.Line, Section: section, Key: key, Msg: fmt.Sprintf(format, args...)})
}
