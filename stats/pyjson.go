package stats

import (
	"strconv"

	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
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
	o.b = pyjson.AppendString(o.b, k)
	o.b = append(o.b, ": "...)
}

func (o *object) str(k, v string)     { o.key(k); o.b = pyjson.AppendString(o.b, v) }
func (o *object) int(k string, v int) { o.key(k); o.b = strconv.AppendInt(o.b, int64(v), 10) }
func (o *object) float(k string, v float64) {
	o.key(k)
	o.b = pyjson.AppendFloat(o.b, v)
}
func (o *object) null(k string) { o.key(k); o.b = append(o.b, "null"...) }
func (o *object) na(k string)   { o.str(k, "N/A") }
func (o *object) end() []byte   { return append(o.b, '}') }
