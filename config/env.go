package config

import (
	"os"
	"regexp"
	"strings"
)

// envSection is [env] (patterns nil) or one [env:PATTERNS] section.
type envSection struct {
	sec      *rawSection
	patterns []string
	vals     map[string]string
	order    []string // key names in file order
}

func (e *envSection) matches(watcher string) bool {
	for _, p := range e.patterns {
		if fnmatch(p, watcher) {
			return true
		}
	}
	return false
}

// osEnviron is the arbiter's environment as a map plus its names in order.
func osEnviron() (map[string]string, []string) {
	env := map[string]string{}
	var order []string
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := env[k]; !dup {
			order = append(order, k)
		}
		env[k] = v
	}
	return env, order
}

// readEnv reads an env section. Its values get $NAME from the arbiter's
// environment and $(circus.env.X) from lookup. Keys keep their case (Circus's
// env_sensecase test), and Circus's "__name__" key does not appear.
func readEnv(sec *rawSection, patterns []string, osenv map[string]string, lookup func(string) (string, bool)) *envSection {
	e := &envSection{sec: sec, patterns: patterns, vals: map[string]string{}}
	for _, k := range sec.keys {
		e.vals[k.name] = expandEnvValue(k.value, osenv, lookup)
		e.order = append(e.order, k.name)
	}
	return e
}

// expandEnvValue replaces $NAME (NAME = [A-Za-z_][A-Za-z0-9_]*) with the
// arbiter's variable, empty when unset, and Circus's substitutions with
// lookup, in one pass so that neither sees the other's output. A '$' not
// followed by a name stays as written: Circus mangles it (#1189).
func expandEnvValue(s string, osenv map[string]string, lookup func(string) (string, bool)) string {
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
		if s[i] == '$' && i+1 < len(s) && isNameStart(s[i+1]) {
			j := i + 1
			for isNameByte(s, j) {
				j++
			}
			b.WriteString(osenv[s[i+1:j]])
			i = j
			continue
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}

func isNameStart(c byte) bool { return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

// fnmatch matches name against a shell pattern as Python's fnmatch does on
// POSIX: case-sensitive, '*', '?', '[seq]' and '[!seq]'.
func fnmatch(pattern, name string) bool {
	re, err := regexp.Compile(translateGlob(pattern))
	return err == nil && re.MatchString(name)
}

// translateGlob is Python's fnmatch.translate.
func translateGlob(pattern string) string {
	pat := []rune(pattern)
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(pat); {
		c := pat[i]
		i++
		switch c {
		case '*':
			b.WriteString(`.*`)
		case '?':
			b.WriteString(`.`)
		case '[':
			j := i
			if j < len(pat) && pat[j] == '!' {
				j++
			}
			if j < len(pat) && pat[j] == ']' {
				j++
			}
			for j < len(pat) && pat[j] != ']' {
				j++
			}
			if j >= len(pat) {
				b.WriteString(`\[`)
				continue
			}
			set := strings.ReplaceAll(string(pat[i:j]), `\`, `\\`)
			i = j + 1
			switch {
			case strings.HasPrefix(set, "!"):
				set = "^" + set[1:]
			case strings.HasPrefix(set, "^"):
				set = `\` + set
			}
			b.WriteString("[" + set + "]")
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString(`)$`)
	return b.String()
}
