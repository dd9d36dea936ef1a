// Package pyjson writes JSON scalars the way Python's json.dumps does with
// its default arguments, which is what Circus puts on the wire: strings
// with ensure_ascii (every non-ASCII character and control character as
// \uXXXX) and floats as Python's repr (shortest round-trip digits, always a
// decimal point or an exponent: "1795464673.0", "1e-05"), NaN and the
// infinities as NaN, Infinity and -Infinity. encoding/json differs on
// both.
//
// Separators (", " and ": ") and containers are the caller's: control,
// pubsub and stats each build their own objects around these.
package pyjson

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
)

// AppendFloat appends f as Python's float repr: the shortest digits that
// read back as f, in positional form for decimal exponents -4 to 15 (with
// ".0" when integral), else as "1e+16" or "1.5e-05".
func AppendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "Infinity"...)
	case math.IsInf(f, -1):
		return append(b, "-Infinity"...)
	case f == 0:
		if math.Signbit(f) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	// e form gives the digits and the exponent: "-1.2345e+09".
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	mant, exp, _ := bytes.Cut(e, []byte("e"))
	digits := string(mant[:1]) + string(bytes.TrimPrefix(mant[1:], []byte(".")))
	x, _ := strconv.Atoi(string(exp))
	if neg {
		b = append(b, '-')
	}
	if x < -4 || x >= 16 {
		b = append(b, digits[0])
		if len(digits) > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		if x < 0 {
			b = append(b, '-')
			x = -x
		} else {
			b = append(b, '+')
		}
		if x < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(x), 10)
	}
	if x < 0 {
		b = append(b, "0."...)
		for range -x - 1 {
			b = append(b, '0')
		}
		return append(b, digits...)
	}
	if len(digits) <= x+1 {
		b = append(b, digits...)
		for range x + 1 - len(digits) {
			b = append(b, '0')
		}
		return append(b, ".0"...)
	}
	b = append(b, digits[:x+1]...)
	b = append(b, '.')
	return append(b, digits[x+1:]...)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string the way json.dumps does with
// ensure_ascii: printable ASCII as is, the escapes \" \\ \n \r \t \b \f,
// every other character (DEL and non-ASCII included) as a lower-case
// \uXXXX, and characters beyond the BMP as a surrogate pair. Invalid UTF-8
// becomes \ufffd, since a Python str cannot hold it.
func AppendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		// Runs of printable ASCII, most of what workers write, are
		// copied whole.
		j := i
		for j < len(s) && s[j] >= 0x20 && s[j] < 0x7f && s[j] != '"' && s[j] != '\\' {
			j++
		}
		if j > i {
			b = append(b, s[i:j]...)
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '"':
			b = append(b, `\"`...)
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r == '\b':
			b = append(b, `\b`...)
		case r == '\f':
			b = append(b, `\f`...)
		case r >= 0x20 && r < 0x7f:
			b = append(b, byte(r))
		case r > 0xffff:
			r -= 0x10000
			b = appendU4(b, 0xd800+(r>>10))
			b = appendU4(b, 0xdc00+(r&0x3ff))
		default:
			if r == utf8.RuneError {
				r = 0xfffd
			}
			b = appendU4(b, r)
		}
	}
	return append(b, '"')
}

func appendU4(b []byte, r rune) []byte {
	return append(b, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}
