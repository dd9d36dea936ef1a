package main

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// parsed is a command's arguments after the command name.
type parsed struct {
	args []string          // positionals
	set  map[string]string // flags given, by name; a switch maps to "true"
	// terminal is set when the output goes to a terminal, where a person
	// reads it (status prints a table there).
	terminal bool
}

// on reports whether switch name was given.
func (a *parsed) on(name string) bool { return a.set[name] == "true" }

// get returns flag name's value, or def when it was not given.
func (a *parsed) get(name, def string) string {
	if v, ok := a.set[name]; ok {
		return v
	}
	return def
}

// usageError is a command line that does not fit the command's usage:
// exit status 2, as argparse gives Circus's circusctl.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// errHelp is a command line asking for the command's help.
var errHelp = errors.New("help requested")

// globalNames are the global options, named in the error for one given
// after the command (Circus takes them only before it).
var globalNames = []string{"endpoint", "timeout", "json", "prettify", "ssh", "ssh_keyfile", "version"}

// negative matches a negative number, which is a positional (decr's NB,
// say), not a flag, as argparse has it.
var negative = regexp.MustCompile(`^-[0-9]+(\.[0-9]*)?$`)

// parse reads a command's arguments. Flags may come anywhere among the
// positionals, as argparse allows (Circus documents "signal NAME [PID]
// [--children] SIGNUM"); "--" ends the flags. A flag's value is the next
// argument or follows "=". It returns errHelp for -h or --help, and a
// *usageError for anything that does not fit.
func (c *command) parse(argv []string) (*parsed, error) {
	a := &parsed{set: map[string]string{}}
	literal := false
	for i := 0; i < len(argv); i++ {
		s := argv[i]
		if literal || (c.rest > 0 && len(a.args) >= c.rest) || len(s) < 2 || s[0] != '-' || negative.MatchString(s) {
			a.args = append(a.args, s)
			continue
		}
		if s == "--" {
			literal = true
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(s, "-"), "-"), "=")
		if name == "h" || name == "help" {
			return nil, errHelp
		}
		f := c.flag(name)
		if f != nil {
			name = f.name // a short form counts as the flag itself
		}
		switch {
		case f == nil && slices.Contains(globalNames, name):
			return nil, usageErrorf("--%s is a global option: give it before the command (circusctl --%s ... %s)", name, name, c.name)
		case f == nil:
			return nil, usageErrorf("unknown flag %s", s)
		case f.value == "":
			if hasVal {
				return nil, usageErrorf("--%s takes no value", name)
			}
			a.set[name] = "true"
			continue
		case !hasVal:
			if i+1 == len(argv) {
				return nil, usageErrorf("--%s needs a value (%s)", name, f.value)
			}
			i++
			val = argv[i]
		}
		if len(f.choices) > 0 && !slices.Contains(f.choices, val) {
			return nil, usageErrorf("--%s %s: want one of %s", name, val, strings.Join(f.choices, ", "))
		}
		if f.check != nil {
			if err := f.check(val); err != nil {
				return nil, usageErrorf("--%s %s: %v", name, val, err)
			}
		}
		a.set[name] = val
	}
	switch n := len(a.args); {
	case n < c.min:
		return nil, usageErrorf("too few arguments")
	case c.max >= 0 && n > c.max:
		return nil, usageErrorf("too many arguments: %s", strings.Join(a.args[c.max:], " "))
	}
	return a, nil
}

func (c *command) flag(name string) *flagSpec {
	for i := range c.flags {
		if c.flags[i].name == name || c.flags[i].short != "" && c.flags[i].short == name {
			return &c.flags[i]
		}
	}
	return nil
}

// usage is the command's one-line synopsis.
func (c *command) usage() string {
	var flags []string
	for _, f := range c.flags {
		if f.value == "" {
			flags = append(flags, "[--"+f.name+"]")
		} else {
			flags = append(flags, "[--"+f.name+" "+f.value+"]")
		}
	}
	parts := []string{"circusctl", c.name}
	if c.rest > 0 {
		// Flags must come before the literal part.
		parts = append(append(parts, flags...), c.args)
	} else {
		parts = append(append(parts, c.args), flags...)
	}
	return strings.Join(strings.Fields(strings.Join(parts, " ")), " ")
}
