// Package config reads Circus configuration files into plain typed structs.
//
// A Circus 0.19 user's file loads unchanged: the same sections ([circus],
// [watcher:NAME], [socket:NAME], [env], [env:PATTERNS], [plugin:NAME]), the
// same keys and defaults (see [Defaults]), includes, and $(circus.X)
// substitution. [Load] reads a file and its includes; [Parse] reads bytes.
// Both report every problem at once as *[Error] values joined with
// errors.Join, each naming file, line, section and key:
//
//	web.ini:14: [watcher:api] numprocesses: "ten" is not a number
//
// # Dialect
//
// The file is read as Circus's own parser reads it (a Python 2
// RawConfigParser with first-wins duplicates), using gopkg.in/ini.v1 with
// the options and the pre- and post-processing that make it agree:
//
//   - Keys and section names are case-sensitive; `key = value` or `key: value`.
//   - Blank lines and lines starting with '#', ';' or "rem" in column 0 are
//     skipped everywhere, even inside a multi-line value.
//   - An indented line continues the previous value (lines joined with "\n").
//   - On a value's first line, ';' after whitespace starts a comment; '#'
//     never does. A value of "" is empty. Quotes are kept; no %(x)s
//     interpolation; a trailing '\' is kept.
//   - The first occurrence of a key wins, within a section, across repeats
//     of a section and across files (the main file before its includes).
//   - Booleans are yes/true/on/1 and no/false/off/0 in any case. Seconds may
//     be fractional. Signals are numbers or names, with or without SIG, in
//     any case, with an optional offset (SIGRTMIN+1): see [ParseSignal].
//   - include takes space-separated globs relative to the main file's
//     directory; include_dir takes directories, each adding DIR/*.ini. Only
//     the main file's [circus] section is looked at for them.
//
// # Substitution
//
// At load time, $(circus.env.NAME) and ((circus.env.NAME)) ("circus" and
// NAME in any case) are replaced from the arbiter's environment and [env]
// in every section, and in a watcher also from the [env:PATTERNS] sections
// that match its name (comma-separated fnmatch patterns, later sections
// winning). Values of env sections also expand $NAME from the arbiter's
// environment, empty when unset. The spawn-time variables ($(circus.wid),
// $(circus.sockets.NAME), $(circus.<option>)) are left for the arbiter,
// which calls [Expand].
//
// # Differences from Circus
//
// Ringmaster fixes what are bugs in Circus rather than copy them:
//
//   - A socket's umask is octal (Circus reads "022" as decimal 22), and its
//     default is the sockets package's safe one, not Circus's 8.
//   - In env values, a '$' not followed by a name is kept (Circus #1189
//     mangles it), and the parser's "__name__" key never leaks into an
//     environment.
//   - warmup_delay accepts fractional seconds (Circus aborts on 0.5).
//   - uid = 0 means root; Circus takes 0 as "unset".
//   - Problems Circus finds only when a watcher starts, or never, are load
//     errors here, with a line number: a missing cmd, an unknown user or
//     group, a $(circus.sockets.NAME) naming no socket, an unknown
//     stdin_socket, copy_path or virtualenv without copy_env, singleton with
//     more than one process, an unknown rlimit.
//   - Keys Ringmaster does not know are kept (watchers' free-form options)
//     or ignored, with a warning that suggests the key probably meant.
//     Python hooks cannot run; they are warnings.
//   - A [plugin:NAME] must use one of Circus's own classes, which
//     Ringmaster has built in (see [Plugin.Spec] and package plugins); any
//     other class is an error, unless active = false. Plugin options are
//     checked at load time; options Circus would give the plugin's own
//     watcher process (priority...) are warned about and ignored.
//   - Watcher names that differ only in case are an error, since commands
//     look watchers up without case.
//   - The flapping limit is built in (10 deaths in 5 s by default); a
//     [plugin:X] with use = circus.plugins.flapping.Flapping sets it for
//     every watcher, flapping.* keys per watcher, check_flapping = false
//     turns it off.
//   - ini.v1 gives values starting with a backquote or `"""` a quoting
//     meaning; such values are taken literally, as Circus does.
package config
