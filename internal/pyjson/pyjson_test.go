package pyjson

import (
	"math"
	"testing"
)

// tenth is a variable so that 0.1+0.2 is float64 arithmetic, not an
// exact constant expression.
var tenth = 0.1

func TestAppendFloat(t *testing.T) {
	t.Parallel()
	// Expected strings are Python 3's repr of the same float.
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{"zero", 0, "0.0"},
		{"negative zero", math.Copysign(0, -1), "-0.0"},
		{"one", 1, "1.0"},
		{"one decimal", 2.5, "2.5"},
		{"negative integral", -3, "-3.0"},
		{"tenth", 0.1, "0.1"},
		{"three decimals", 0.006, "0.006"},
		{"integral", 100, "100.0"},
		{"sum artefact", tenth + 2*tenth, "0.30000000000000004"},
		{"decimals", 123.456, "123.456"},
		{"epoch", 1795464649.2569616, "1795464649.2569616"},
		{"epoch, reply time", 1795464666.2683172, "1795464666.2683172"},
		{"epoch, integral", 1795464673, "1795464673.0"},
		{"create_time", 179546464828.0/100 + 0, "1795464648.28"},
		{"small", 0.0001, "0.0001"},
		{"smaller", 0.00001, "1e-05"},
		{"small mantissa", 1.5e-7, "1.5e-07"},
		{"large positional", 1e15, "1000000000000000.0"},
		{"large exponent", 1e16, "1e+16"},
		{"large mantissa", 1.5e16, "1.5e+16"},
		{"larger mantissa", 1.5e17, "1.5e+17"},
		{"1e22", 1e22, "1e+22"},
		{"three-digit exponent", 1e100, "1e+100"},
		{"negative", -2.25, "-2.25"},
		{"inf", math.Inf(1), "Infinity"},
		{"-inf", math.Inf(-1), "-Infinity"},
		{"nan", math.NaN(), "NaN"},
	}
	for _, tt := range tests {
		if got := string(AppendFloat([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("%s: AppendFloat(%v) = %s, want x%s", tt.name, tt.in, got, tt.want)
		}
	}
}

func TestAppendString(t *testing.T) {
	t.Parallel()
	// Expected strings are Python 3's json.dumps of the same str.
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", `""`},
		{"plain", "web srv", `"web srv"`},
		{"quotes", `a"b\c`, `"a\"b\\c"`},
		{"controls", "\n\r\t\b\f\x01\x1f\x7f", `"\n\r\t\b\f\u0001\u001f\u007f"`},
		{"html is not escaped", "<&>/", `"<&>/"`},
		{"non-ascii", "café", `"caf\u00e9"`},
		{"bmp", "日本", `"\u65e5\u672c"`},
		{"astral", "🎪", `"\ud83c\udfaa"`},
		{"invalid utf-8", "a\xffb", `"a\ufffdb"`},
		{"replacement char", "\ufffd", `"\ufffd"`},
	}
	for _, tt := range tests {
		if got := string(AppendString([]byte("x"), tt.in)); got != "x"+tt.want {
			t.Errorf("%s: AppendString(%q) = %s, want x%s", tt.name, tt.in, got, tt.want)
		}
	}
}

// FuzzAppendString: the fast path for runs of plain ASCII renders exactly
// what escaping rune by rune does, whatever the bytes.
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain line", `a"b\c`, "\n\x01\x7f", "café 日本 🎪", "a\xffb\xc3", "\xed\xa0\x80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := []byte{'"'}
		for _, r := range s {
			want = appendRune(want, r)
		}
		want = append(want, '"')
		if got := AppendString(nil, s); string(got) != string(want) {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// appendRune escapes one rune as AppendString does: a reference for the
// fuzz target.
func appendRune(b []byte, r rune) []byte {
	switch {
	case r == '"' || r == '\\' || r >= 0x20 && r < 0x7f:
		if r == '"' || r == '\\' {
			b = append(b, '\\')
		}
		return append(b, byte(r))
	case r == '\n':
		return append(b, `\n`...)
	case r == '\r':
		return append(b, `\r`...)
	case r == '\t':
		return append(b, `\t`...)
	case r == '\b':
		return append(b, `\b`...)
	case r == '\f':
		return append(b, `\f`...)
	case r > 0xffff:
		r -= 0x10000
		return appendU4(appendU4(b, 0xd800+(r>>10)), 0xdc00+(r&0x3ff))
	}
	return appendU4(b, r) // utf8.RuneError is U+FFFD already
}
