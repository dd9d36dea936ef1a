package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/shlex"
)

// defaultPath is what the arbiter searches for a bare command when the
// worker's environment has no PATH.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// commandReloader restarts a watcher whose program changed on disk, as
// Circus's CommandReloader.
type commandReloader struct {
	e    env
	spec *config.CommandReloader

	// Owned by run: the program of each watcher as last seen, by the
	// lower-cased name list reports.
	seen map[string]program
	// unresolved remembers why a watcher's program could not be found,
	// so that it is logged once, not every second.
	unresolved map[string]string
}

// program is a watcher's program file as last looked at.
type program struct {
	path     string // real path
	mtime    int64  // nanoseconds
	dev, ino uint64
}

func newCommandReloader(e env, s *config.CommandReloader) plugin {
	return &commandReloader{e: e, spec: s, seen: map[string]program{}, unresolved: map[string]string{}}
}

func (p *commandReloader) run(ctx context.Context) {
	every(ctx, p.spec.LoopRate, p.lookAfter)
}

func (p *commandReloader) lookAfter(ctx context.Context) {
	r, err := p.e.cmds.call(ctx, "list", nil)
	if err != nil {
		if ctx.Err() == nil {
			p.e.log.Warn("list failed", "err", err)
		}
		return
	}
	watchers := map[string]bool{}
	for _, name := range r.stringList("watchers") {
		if !strings.HasPrefix(name, "plugin:") {
			watchers[name] = true
		}
	}
	for name := range p.seen {
		if !watchers[name] {
			delete(p.seen, name)
		}
	}
	for name := range p.unresolved {
		if !watchers[name] {
			delete(p.unresolved, name)
		}
	}
	for _, name := range r.stringList("watchers") {
		if !watchers[name] || ctx.Err() != nil {
			continue
		}
		cur, err := p.look(ctx, name)
		if err != nil {
			// Kept as last seen: a program being replaced may be missing
			// for a moment, and its return must still count as a change.
			if msg := err.Error(); p.unresolved[name] != msg {
				p.unresolved[name] = msg
				p.e.log.Warn("cannot look at the watcher's program", "watcher", name, "err", err)
			}
			continue
		}
		delete(p.unresolved, name)
		switch old, ok := p.seen[name]; {
		case !ok:
			p.e.log.Debug("watching the program", "watcher", name, "path", cur.path)
		case old != cur:
			p.e.log.Info("program changed; restarting", "watcher", name, "path", cur.path)
			p.e.cmds.cast(ctx, "restart", map[string]any{"name": name, "match": "simple"})
		}
		p.seen[name] = cur
	}
}

// look finds the watcher's program and reads its identity.
func (p *commandReloader) look(ctx context.Context, name string) (program, error) {
	r, err := p.e.cmds.call(ctx, "get", map[string]any{"name": name,
		"keys": []string{"cmd", "executable", "working_dir", "env", "copy_env"}})
	if err != nil {
		return program{}, err
	}
	var o struct {
		Cmd        string            `json:"cmd"`
		Executable *string           `json:"executable"`
		WorkingDir *string           `json:"working_dir"`
		Env        map[string]string `json:"env"`
		CopyEnv    bool              `json:"copy_env"`
	}
	if err := json.Unmarshal(r["options"], &o); err != nil {
		return program{}, fmt.Errorf("get: options: %w", err)
	}
	exe := ""
	if o.Executable != nil {
		exe = *o.Executable
	} else if words, err := shlex.Split(o.Cmd); err != nil {
		return program{}, fmt.Errorf("cmd %q: %w", o.Cmd, err)
	} else if len(words) > 0 {
		exe = words[0]
	}
	if exe == "" {
		return program{}, fmt.Errorf("cmd %q names no program", o.Cmd)
	}
	if strings.Contains(exe, "$(") || strings.Contains(exe, "((") {
		return program{}, fmt.Errorf("program %q is known only at spawn", exe)
	}
	path, ok := o.Env["PATH"]
	if !ok && o.CopyEnv {
		path = os.Getenv("PATH")
	}
	dir := ""
	if o.WorkingDir != nil {
		dir = *o.WorkingDir
	}
	file, err := lookPath(exe, path, dir)
	if err != nil {
		return program{}, err
	}
	real, err := filepath.EvalSymlinks(file)
	if err != nil {
		return program{}, err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(real, &st); err != nil {
		return program{}, &os.PathError{Op: "stat", Path: real, Err: err}
	}
	return program{path: real, mtime: st.Mtim.Nano(), dev: st.Dev, ino: st.Ino}, nil
}

// lookPath finds exe as the arbiter does when it spawns: a name with a
// slash is taken as it is, relative to the working directory the worker
// execs in; a bare one is searched in path.
func lookPath(exe, path, dir string) (string, error) {
	if strings.Contains(exe, "/") {
		if !filepath.IsAbs(exe) && dir != "" {
			exe = filepath.Join(dir, exe)
		}
		return filepath.Abs(exe)
	}
	if path == "" {
		path = defaultPath
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		f := filepath.Join(d, exe)
		if fi, err := os.Stat(f); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return filepath.Abs(f)
		}
	}
	return "", fmt.Errorf("%q not found in PATH %q", exe, path)
}
