package stats

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file writes JSON the way Python's json.dumps does with its default
// arguments, which is what Circus puts on the wire: ", " and ": "
// separators, floats in repr form (always with a decimal point or an
// exponent), and every non-ASCII character escaped as \uXXXX
// (ensure_ascii). encoding/json differs on all three.

// object appends the members of one JSON object, in the order they are
// added.
type object struct {
	b []byte
	n int
}

func newObject(b []byte) *object { return &object{b: append(b, '{')} }

func (o *object) key(k string) {
	if o.n > 0 {
		o.b = append(o.b, ", "...)
	}
	o.n++
	o.b = appendPyString(o.b, k)
	o.b = append(o.b, ": "...)
}

func (o *object) str(k, v string)     { o.key(k); o.b = appendPyString(o.b, v) }
func (o *object) int(k string, v int) { o.key(k); o.b = strconv.AppendInt(o.b, int64(v), 10) }
func (o *object) float(k string, v float64) {
	o.key(k)
	o.b = appendPyFloat(o.b, v)
}
func (o *object) null(k string) { o.key(k); o.b = append(o.b, "null"...) }
func (o *object) na(k string)   { o.str(k, "N/A") }
func (o *object) end() []byte   { return append(o.b, '}') }

// appendPyFloat appends f as Python's repr(f) spells it: the shortest
// digits that round-trip (as strconv's), in positional notation when the
// decimal exponent is in [-4, 16) and with a ".0" if there is no fraction,
// else in exponent notation ("1e-05", "1.5e+16"). NaN and infinities come
// out as json.dumps writes them (NaN, Infinity, -Infinity).
func appendPyFloat(b []byte, f float64) []byte {
	s := strconv.FormatFloat(f, 'e', -1, 64)
	switch s {
	case "NaN":
		return append(b, "NaN"...)
	case "+Inf":
		return append(b, "Infinity"...)
	case "-Inf":
		return append(b, "-Infinity"...)
	}
	mant, e, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(e)
	if exp < -4 || exp >= 16 {
		return append(b, s...) // Go's 'e' already writes "1e-05", "1.5e+16"
	}
	neg := mant[0] == '-'
	if neg {
		mant = mant[1:]
		b = append(b, '-')
	}
	digits := strings.Replace(mant, ".", "", 1)
	switch {
	case exp < 0:
		b = append(b, "0."...)
		b = append(b, strings.Repeat("0", -exp-1)...)
		b = append(b, digits...)
	case exp+1 >= len(digits):
		b = append(b, digits...)
		b = append(b, strings.Repeat("0", exp+1-len(digits))...)
		b = append(b, ".0"...)
	default:
		b = append(b, digits[:exp+1]...)
		b = append(b, '.')
		b = append(b, digits[exp+1:]...)
	}
	return b
}

// appendPyString appends s as a JSON string with Python's escapes: \" \\
// \n \r \t \b \f, other control characters and all non-ASCII as \uXXXX
// (surrogate pairs above U+FFFF). Invalid UTF-8 becomes U+FFFD.
func appendPyString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	u := func(b []byte, r rune) []byte {
		return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r == '\n':
			b = append(b, '\\', 'n')
		case r == '\r':
			b = append(b, '\\', 'r')
		case r == '\t':
			b = append(b, '\\', 't')
		case r == '\b':
			b = append(b, '\\', 'b')
		case r == '\f':
			b = append(b, '\\', 'f')
		case r < 0x20 || r == 0x7f:
			b = u(b, r)
		case r < utf8.RuneSelf:
			b = append(b, byte(r))
		case r > 0xffff:
			r -= 0x10000
			b = u(b, 0xd800+(r>>10))
			b = u(b, 0xdc00+(r&0x3ff))
		default:
			b = u(b, r)
		}
	}
	return append(b, '"')
}
