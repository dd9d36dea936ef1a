package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Load reads the configuration file at path and the files its [circus]
// include and include_dir keys name, and returns it with defaults applied
// and load-time substitutions done.
//
// The returned error joins (errors.Join) one *[Error] per problem found, so
// that a check of the file lists them all; the Config is returned even then,
// for such a listing, but must not be run. Problems that do not stop the
// arbiter are in Config.Warnings. The error for a main file that cannot be
// read wraps the fs error (errors.Is(err, fs.ErrNotExist) works).
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config %s: %w", path, err)
	}
	d := &diag{}
	r := newRaw()
	r.add(path, data, d)
	files := []string{path}
	sources := []Source{{File: path, Data: data}}
	for _, inc := range includes(r, filepath.Dir(path), d) {
		data, err := os.ReadFile(inc.file)
		if err != nil {
			d.errs = append(d.errs, &Error{File: inc.pos.File, Line: inc.pos.Line, Section: "circus", Key: inc.key,
				Msg: fmt.Sprintf("cannot read %s: %v", inc.file, unwrapPath(err))})
			continue
		}
		files = append(files, inc.file)
		sources = append(sources, Source{File: inc.file, Data: data})
		r.add(inc.file, data, d)
	}
	c := build(path, r, d)
	c.Files = files
	c.Sources = sources
	return c, errors.Join(d.errs...)
}

// Parse reads one configuration from data, name standing for its file in
// positions and messages. include and include_dir are kept in Circus but not
// followed: Parse never touches the disk (it is what the fuzzer drives).
func Parse(name string, data []byte) (*Config, error) {
	d := &diag{}
	r := newRaw()
	r.add(name, data, d)
	c := build(name, r, d)
	c.Files = []string{name}
	return c, errors.Join(d.errs...)
}

type include struct {
	file string
	key  string
	pos  Position
}

// includes lists the files that the main file's include and include_dir
// name, relative to dir, each once, in order. A pattern with no match is a
// warning (Circus's empty_include test); a name without wildcards that does
// not exist is an error, since it is surely a mistake.
func includes(r *raw, dir string, d *diag) []include {
	sec, ok := r.section("circus")
	if !ok {
		return nil
	}
	var out []include
	seen := map[string]bool{}
	add := func(key, pattern string, explicit bool) {
		k, _ := sec.get(key)
		p := pattern
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		matches, err := filepath.Glob(p)
		if err != nil {
			d.errorf(k.pos, "circus", key, "bad pattern %q: %v", pattern, err)
			return
		}
		if len(matches) == 0 {
			if explicit && !hasMeta(pattern) {
				d.errorf(k.pos, "circus", key, "%s does not exist", p)
				return
			}
			d.warnf(k.pos, "circus", key, "%q matches no file (paths are relative to %s)", pattern, dir)
			return
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, include{file: m, key: key, pos: k.pos})
			}
		}
	}
	if k, ok := sec.get("include"); ok {
		for _, p := range strings.Fields(k.value) {
			add("include", p, true)
		}
	}
	if k, ok := sec.get("include_dir"); ok {
		for _, p := range strings.Fields(k.value) {
			add("include_dir", filepath.Join(p, "*.ini"), false)
		}
	}
	return out
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// unwrapPath drops the *fs.PathError wrapper, whose path the message
// already names.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Pos returns where section's key was read; key "" asks for the section
// header. section is as written ("watcher:api"), compared without case. The
// zero Position means unknown. The arbiter uses it to place errors it finds
// later, such as a port already in use.
func (c *Config) Pos(section, key string) Position {
	return c.pos[posKey(section, key)]
}

// KeyError returns err as an [*Error] placed at section's key, for a
// problem found after loading, such as an endpoint already in use.
func (c *Config) KeyError(section, key string, err error) *Error {
	p := c.Pos(section, key)
	return &Error{File: p.File, Line: p.Line, Section: section, Key: key, Msg: err.Error()}
}

func posKey(section, key string) string { return strings.ToLower(section) + "\x00" + key }
