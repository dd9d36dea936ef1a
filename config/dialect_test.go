package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDialect checks the parser rules of Circus's StrictConfigParser that
// ini.v1 does not follow by itself (reference/go-deps.md §3): each case is
// one key of a watcher section and the value Circus reads for it.
func TestDialect(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string // lines after "[watcher:w]\ncmd = w\n"
		key  string
		want string
	}{
		{"first duplicate wins", "x = one\nx = two\n", "x", "one"},
		{"empty first duplicate wins", "x =\nx = two\n", "x", ""},
		{"colon delimiter", "x: value\n", "x", "value"},
		{"inline ; after space is a comment", "x = 0 ; comment\n", "x", "0"},
		{"; without space is kept", "x = a;b\n", "x", "a;b"},
		{"inline # is kept", "x = red # not a comment\n", "x", "red # not a comment"},
		{"value starting with #", "x = #ff0000\n", "x", "#ff0000"},
		{"quotes are kept", `x = "quoted"` + "\n", "x", `"quoted"`},
		{"two quotes mean empty", `x = ""` + "\n", "x", ""},
		{"no % interpolation", "x = %(here)s/bin\n", "x", "%(here)s/bin"},
		{"trailing backslash kept", "x = a \\\ny = b\n", "x", `a \`},
		{"line after backslash is its own key", "x = a \\\ny = b\n", "y", "b"},
		{"multi-line value", "x = --a\n  --b\n\t--c\n", "x", "--a\n--b\n--c"},
		{"blank line inside multi-line value", "x = --a\n\n  --b\n", "x", "--a\n--b"},
		{"comment line inside multi-line value", "x = --a\n# note\n  --b\n", "x", "--a\n--b"},
		{"; on a continuation line is kept", "x = a\n  b ; c\n", "x", "a\nb ; c"},
		{"backquoted value taken literally", "x = `which python` app.py\n", "x", "`which python` app.py"},
		{"triple quotes taken literally", `x = """abc"""` + "\n", "x", `"""abc"""`},
		{"rem comment line", "rem a comment\nx = 1\n", "x", "1"},
		{"keys are case-sensitive", "Upper = 1\nupper = 2\n", "Upper", "1"},
		{"CRLF line ends", "x = 1\r\n", "x", "1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			data := "[watcher:w]\ncmd = w\n" + tt.body
			c, err := Parse("t.ini", []byte(data))
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", data, err)
			}
			got, ok := c.Watchers[0].Options[tt.key]
			if !ok || got != tt.want {
				t.Errorf("Parse(%q) %s = %q (set: %v), want %q", data, tt.key, got, ok, tt.want)
			}
		})
	}
}

// TestDottedSectionNames checks that [socket:web.v2] is not read as a child
// of [socket:web] (ini.v1's default would make it inherit host).
func TestDottedSectionNames(t *testing.T) {
	t.Parallel()
	c, err := Parse("t.ini", []byte("[socket:web]\nhost = 10.0.0.1\n[socket:web.v2]\nport = 1\n"))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	got := []string{c.Sockets[0].Host, c.Sockets[1].Name, c.Sockets[1].Host}
	if diff := cmp.Diff([]string{"10.0.0.1", "web.v2", "localhost"}, got); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
}

// TestEnv checks [env] and [env:PATTERNS]: pattern matching, precedence,
// $NAME expansion from the arbiter's environment, and substitution.
func TestEnv(t *testing.T) {
	t.Setenv("RM_TEST_HOME", "/home/rm")
	t.Setenv("RM_TEST_UNSET", "")
	const ini = `[env]
SHARED = global
LEVEL = env
HOME2 = $RM_TEST_HOME/x
PRICE = 5$ and $$ and $(x)
GONE = [$RM_TEST_NOT_SET_AT_ALL]

[env:web*, api]
LEVEL = pattern
FROM_GLOBAL = $(circus.env.shared)

[env:web]
LEVEL = exact

[env:w[!e]b]
NOT = matched

[watcher:web]
cmd = run $(CIRCUS.ENV.LEVEL) ((circus.env.home2)) $(circus.env.nope)

[watcher:api]
cmd = api

[watcher:other]
cmd = other $(circus.env.level)
`
	c, err := Parse("t.ini", []byte(ini))
	if err != nil {
		t.Fatalf("Parse() error = %v", err)
	}
	global := map[string]string{"SHARED": "global", "LEVEL": "env", "HOME2": "/home/rm/x", "PRICE": "5$ and $$ and $(x)", "GONE": "[]"}
	if diff := cmp.Diff(global, c.Env); diff != "" {
		t.Errorf("Env (-want +got):\n%s", diff)
	}
	tests := []struct {
		watcher string
		level   string
		cmd     string
	}{
		{"web", "exact", "run exact /home/rm/x $(circus.env.nope)"},
		{"api", "pattern", "api"},
		{"other", "env", "other env"},
	}
	for _, tt := range tests {
		t.Run(tt.watcher, func(t *testing.T) {
			w := watcher(t, c, tt.watcher)
			if w.Env["LEVEL"] != tt.level || w.Cmd != tt.cmd {
				t.Errorf("LEVEL, Cmd = %q, %q, want %q, %q", w.Env["LEVEL"], w.Cmd, tt.level, tt.cmd)
			}
			if _, ok := w.Env["__name__"]; ok {
				t.Errorf("Env has Circus's __name__ key")
			}
		})
	}
	if got := watcher(t, c, "api").Env["FROM_GLOBAL"]; got != "global" {
		t.Errorf("api Env[FROM_GLOBAL] = %q, want global", got)
	}
}

func TestFnmatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "anything", true},
		{"web*", "web2", true},
		{"web*", "Web2", false},
		{"w?b", "wab", true},
		{"w[ae]b", "web", true},
		{"w[!ae]b", "web", false},
		{"w[!ae]b", "wob", true},
		{"a.b", "axb", false},
		{"[", "[", true},
		{"w[z-a]", "wz", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.name, func(t *testing.T) {
			t.Parallel()
			if got := fnmatch(tt.pattern, tt.name); got != tt.want {
				t.Errorf("fnmatch(%q, %q) = %v, want %v", tt.pattern, tt.name, got, tt.want)
			}
		})
	}
}
