package config

import (
	"errors"
	"maps"
	"time"
)

// What of a configuration crosses an upgrade in place: the arbiter execs
// its new binary, which must run the configuration in effect, not the one
// on disk by then (applying that is reloadconfig's job), and every
// watcher's options as commands changed them.

// Source is one file of a configuration, as it was read.
type Source struct {
	File string `json:"file"`
	Data []byte `json:"data"`
}

// LoadSources builds the configuration that [Load] read from src (the
// main file first, then its includes in the order read), touching no disk.
func LoadSources(src []Source) (*Config, error) {
	if len(src) == 0 {
		return nil, errors.New("config: no source to load")
	}
	d := &diag{}
	r := newRaw()
	files := make([]string, len(src))
	for i, s := range src {
		r.add(s.File, s.Data, d)
		files[i] = s.File
	}
	c := build(src[0].File, r, d)
	c.Files = files
	c.Sources = src
	return c, errors.Join(d.errs...)
}

// WatcherSpec is a watcher's options in a form that crosses an exec: the
// keys of its section as they are in effect (after substitution), its
// environment, and the flapping limit it was read with.
type WatcherSpec struct {
	Name    string            `json:"name"`
	Options map[string]string `json:"options"`
	Env     map[string]string `json:"env"`
	Flap    FlapSpec          `json:"flap"`
}

// FlapSpec is a flapping limit (from the [circus] defaults or a Flapping
// plugin section) that the watcher's own keys lay over.
type FlapSpec struct {
	Attempts int   `json:"attempts"`
	Window   int64 `json:"window_ns"`
	RetryIn  int64 `json:"retry_in_ns"`
	MaxRetry int   `json:"max_retry"`
}

// Spec returns w as a WatcherSpec.
func (w *Watcher) Spec() WatcherSpec {
	return WatcherSpec{
		Name:    w.Name,
		Options: maps.Clone(w.Options),
		Env:     maps.Clone(w.Env),
		Flap:    FlapSpec{w.FlapAttempts, int64(w.FlapWindow), int64(w.FlapRetryIn), w.FlapMaxRetry},
	}
}

// FromSpec reads s again as [Watcher.With] reads a changed watcher: its
// options with the rules of a file, substituting nothing again.
func FromSpec(s WatcherSpec) (*Watcher, error) {
	base := flapping{s.Flap.Attempts, durationNS(s.Flap.Window), durationNS(s.Flap.RetryIn), s.Flap.MaxRetry}
	if base.attempts == 0 {
		base.attempts = defaultFlapAttempts
	}
	opts := s.Options
	if opts == nil {
		opts = map[string]string{}
	}
	return readOptions(s.Name, opts, base, s.Env, func(string) (string, bool) { return "", false })
}

func durationNS(ns int64) time.Duration { return time.Duration(ns) }
