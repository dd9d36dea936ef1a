package shlex

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  bool
	}{
		{"plain", "serve --fd 3", []string{"serve", "--fd", "3"}, false},
		{"extra spaces and newlines", "  a\t b\n c  ", []string{"a", "b", "c"}, false},
		{"single quotes are literal", `echo 'a "b" \c'`, []string{"echo", `a "b" \c`}, false},
		{"double quotes escape", `echo "a \"b\" \$x \n"`, []string{"echo", `a "b" $x \n`}, false},
		{"backslash outside quotes", `a\ b c\"d`, []string{"a b", `c"d`}, false},
		{"adjacent quoting joins", `--name="web srv"x`, []string{"--name=web srvx"}, false},
		{"empty quoted word", `a '' b`, []string{"a", "", "b"}, false},
		{"unclosed quote", `echo "oops`, nil, true},
		{"trailing backslash", `echo \`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Split(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Split(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Split(%q) mismatch (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

// circusctl's shell lines, as Circus's shell splits them.
func TestSplitShellLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"", nil, true},
		{"  a  b\tc ", []string{"a", "b", "c"}, true},
		{`set web cmd 'sleep 60'`, []string{"set", "web", "cmd", "sleep 60"}, true},
		{`a "b \"c\" \$d \n" e`, []string{"a", `b "c" $d \n`, "e"}, true},
		{`a\ b 'x'"y"z ''`, []string{"a b", "xyz", ""}, true},
		{`'open`, nil, false},
		{`"open`, nil, false},
		{`trailing\`, nil, false},
	} {
		got, err := Split(tc.in)
		if (err == nil) != tc.ok || !slices.Equal(got, tc.want) {
			t.Errorf("Split(%q) = %q, %v; want %q, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestQuote(t *testing.T) {
	t.Parallel()
	for _, w := range []string{"", "plain", "a b", `it's`, `$HOME`, "tab\there", `"q"`} {
		got, err := Split(Quote(w))
		if err != nil || len(got) != 1 || got[0] != w {
			t.Errorf("Split(Quote(%q)) = %q, %v; want the word back", w, got, err)
		}
	}
	if got := Quote("web-1.sock"); got != "web-1.sock" {
		t.Errorf("Quote(%q) = %q, want it unquoted", "web-1.sock", got)
	}
}
