package config

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ringmaster-dev/ringmaster/internal/strftime"
	"github.com/ringmaster-dev/ringmaster/internal/suggest"
)

// StreamClasses are the stream classes Ringmaster has built in: Circus's.
var StreamClasses = []string{
	"FileStream", "WatchedFileStream", "TimedRotatingFileStream",
	"StdoutStream", "FancyStdoutStream", "QueueStream",
}

// streamOptions says which options each class reads. Circus passes every
// option to the class as a keyword and the class ignores those it does not
// take, so an option another class would read is warned about, not
// refused: a Circus file must load as it is.
var streamOptions = map[string][]string{
	"FileStream":              {"filename", "max_bytes", "backup_count", "time_format"},
	"WatchedFileStream":       {"filename", "time_format"},
	"TimedRotatingFileStream": {"filename", "backup_count", "time_format", "rotate_when", "rotate_interval", "utc"},
	"StdoutStream":            {"time_format"},
	"FancyStdoutStream":       {"color", "time_format"},
	"QueueStream":             {},
}

// streamKeys are every stream option, in a fixed order so that the
// suggestion for a typo is always the same.
var streamKeys = []string{"class", "filename", "max_bytes", "backup_count", "time_format",
	"rotate_when", "rotate_interval", "utc", "color", "refresh_time"}

// FancyColors are FancyStdoutStream's colours, in ANSI order (red is 31).
var FancyColors = []string{"red", "green", "yellow", "blue", "magenta", "cyan", "white"}

// stream reads the options of one stream (prefix "stdout_stream." or
// "stderr_stream."), already gathered without their prefix in raw.
func (f *fields) stream(prefix string, raw map[string]string) Stream {
	var s Stream
	if len(raw) == 0 {
		return s
	}
	key := func(opt string) string { return prefix + opt }
	opts := slices.Sorted(maps.Keys(raw))

	class, hasClass := raw["class"]
	class = strings.TrimSpace(class)
	switch {
	case !hasClass && raw["filename"] != "":
		s.Class = "FileStream" // as Circus: a filename alone means a file
	case !hasClass:
		// Circus refuses a stream with neither class nor filename.
		f.errorf(key(opts[0]), "a stream needs a class (%s) or a filename", strings.Join(StreamClasses, ", "))
		return Stream{}
	default:
		s.Class = streamClass(class)
		if s.Class == "" {
			if strings.Contains(class, ".") {
				f.errorf(key("class"), "%q is a Python stream class, which Ringmaster cannot load; the built-in ones are %s",
					class, strings.Join(StreamClasses, ", "))
			} else {
				f.errorf(key("class"), "unknown stream class %q; the built-in ones are %s", class, strings.Join(StreamClasses, ", "))
			}
			return Stream{}
		}
	}

	takes := streamOptions[s.Class]
	for _, opt := range opts {
		switch {
		case opt == "class":
		case opt == "refresh_time":
			f.warnf(key(opt), "obsolete since Circus 0.9, ignored: output is written as it comes")
		case slices.Contains(takes, opt):
		case slices.Contains(streamKeys, opt):
			f.warnf(key(opt), "has no effect with %s, ignored", s.Class)
		default:
			if c, ok := suggest.Closest(opt, streamKeys); ok {
				f.warnf(key(opt), "unknown stream option, ignored; did you mean %s%s?", prefix, c)
			} else {
				f.warnf(key(opt), "unknown stream option, ignored")
			}
		}
	}
	has := func(opt string) bool {
		_, ok := raw[opt]
		return ok && slices.Contains(takes, opt)
	}

	if has("filename") {
		s.Filename = strings.TrimSpace(raw["filename"])
	}
	if has("max_bytes") {
		n, err := parseSize(raw["max_bytes"])
		if err != nil {
			f.errorf(key("max_bytes"), "%v", err)
		}
		s.MaxBytes = n
	}
	if has("backup_count") {
		f.integer(key("backup_count"), &s.BackupCount, 0, 1<<20)
	}
	if has("time_format") {
		s.TimeFormat = raw["time_format"]
		if _, err := strftime.Compile(s.TimeFormat); err != nil {
			f.errorf(key("time_format"), "%v", err)
		}
	}
	if s.Class == "FancyStdoutStream" && s.TimeFormat == "" {
		s.TimeFormat = "%Y-%m-%d %H:%M:%S"
	}
	if s.Class == "TimedRotatingFileStream" {
		s.RotateInterval = 1
		when, ok := raw["rotate_when"]
		when = strings.ToUpper(strings.TrimSpace(when))
		switch {
		case !ok:
			f.errorf(key("class"), "TimedRotatingFileStream needs %srotate_when: S, M, H, D, MIDNIGHT or W0..W6", prefix)
		case slices.Contains([]string{"S", "M", "H", "D", "MIDNIGHT"}, when),
			len(when) == 2 && when[0] == 'W' && when[1] >= '0' && when[1] <= '6':
			// Circus refuses "midnight", which its own documentation
			// shows; any case is accepted here.
			s.RotateWhen = when
		default:
			f.errorf(key("rotate_when"), "%q is not S, M, H, D, MIDNIGHT or W0..W6 (W0 is Monday)", raw["rotate_when"])
		}
		if has("rotate_interval") {
			f.integer(key("rotate_interval"), &s.RotateInterval, 1, 1<<30)
		}
		// Circus reads utc with bool(), so "false" means true; here it is
		// a boolean like every other.
		f.boolean(key("utc"), &s.UTC)
	}
	if has("color") {
		s.Color = strings.ToLower(strings.TrimSpace(raw["color"]))
		if !slices.Contains(FancyColors, s.Color) {
			// Circus picks a random colour instead of saying so.
			f.errorf(key("color"), "%q is not a colour: %s", raw["color"], strings.Join(FancyColors, ", "))
		}
	}
	return s
}

// streamClass returns the built-in class a class option names: a bare
// name, or Circus's module path to it (circus.stream.FileStream,
// circus.stream.file_stream.FileStream). It returns "" for any other.
func streamClass(class string) string {
	name := class
	if i := strings.LastIndexByte(class, '.'); i >= 0 {
		mod := class[:i]
		if mod != "circus.stream" && mod != "circus.stream.file_stream" {
			return ""
		}
		name = class[i+1:]
	}
	if slices.Contains(StreamClasses, name) {
		return name
	}
	return ""
}

// parseSize reads a byte count: a whole number, optionally with a binary
// suffix (K, M, G, or KiB, MiB, GiB; 10M is 10485760).
func parseSize(v string) (int64, error) {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KIB", 1 << 10}, {"MIB", 1 << 20}, {"GIB", 1 << 30}, {"KB", 1 << 10}, {"MB", 1 << 20}, {"GB", 1 << 30},
		{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}} {
		if strings.HasSuffix(strings.ToUpper(s), u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%q is not a size in bytes (a whole number, or with K, M or G)", v)
	}
	return n * mult, nil
}
