package control

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strconv"

	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
)

// Python-compatible JSON: what Circus's json.dumps writes with its defaults
// (separators ", " and ": ", ensure_ascii, floats as repr, NaN/Infinity).

// Field is one member of an ordered JSON object.
type Field struct {
	Key   string
	Value any
}

// Object is a JSON object whose members keep their order, as a Python dict
// does. Use it for nested values whose key order matters, such as restart's
// info {"stopped", "started", "kept"}.
type Object []Field

// Rendered is a value already rendered as Python's json.dumps renders it
// (with internal/pyjson, say): it is appended as it is. A reply of
// thousands of lines (logs) renders them without a reflection or an
// allocation per value.
type Rendered []byte

// appendPy appends v rendered as Python's json.dumps renders the same
// value. It knows nil, bool, the integer and float kinds, string, slices
// and arrays, maps with string or integer keys (sorted, since Go maps have
// no order; use [Object] for a chosen order), [Object], json.RawMessage
// (re-rendered token by token, so key order and big integers survive) and
// pointers and interfaces to these. Anything else, structs for instance,
// goes through encoding/json and is re-rendered, which keeps its field
// order but shows a float64 with an integral value as Go does ("2", not
// Python's "2.0").
func appendPy(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case string:
		return pyjson.AppendString(b, v), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case float64:
		return pyjson.AppendFloat(b, v), nil
	case Object:
		return appendPyObject(b, v)
	case Rendered:
		return append(b, v...), nil
	case []string:
		b = append(b, '[')
		for i, s := range v {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = pyjson.AppendString(b, s)
		}
		return append(b, ']'), nil
	case json.RawMessage:
		return appendPyRaw(b, v)
	case json.Marshaler:
		raw, err := v.MarshalJSON()
		if err != nil {
			return b, err
		}
		return appendPyRaw(b, raw)
	}
	return appendPyReflect(b, reflect.ValueOf(v))
}

func appendPyObject(b []byte, o Object) ([]byte, error) {
	b = append(b, '{')
	var err error
	for i, f := range o {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = pyjson.AppendString(b, f.Key)
		b = append(b, ": "...)
		if b, err = appendPy(b, f.Value); err != nil {
			return b, fmt.Errorf("%s: %w", f.Key, err)
		}
	}
	return append(b, '}'), nil
}

func appendPyReflect(b []byte, rv reflect.Value) ([]byte, error) {
	switch rv.Kind() {
	case reflect.Invalid:
		return append(b, "null"...), nil
	case reflect.Bool:
		return strconv.AppendBool(b, rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.AppendInt(b, rv.Int(), 10), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.AppendUint(b, rv.Uint(), 10), nil
	case reflect.Float32:
		return pyjson.AppendFloat(b, float64(float32(rv.Float()))), nil
	case reflect.Float64:
		return pyjson.AppendFloat(b, rv.Float()), nil
	case reflect.String:
		return pyjson.AppendString(b, rv.String()), nil
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return append(b, "null"...), nil
		}
		return appendPy(b, rv.Elem().Interface())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			// Go's nil slice is Python's empty list here: Circus never sends
			// null where it means "no items".
			return append(b, "[]"...), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			break // []byte: encoding/json's base64
		}
		b = append(b, '[')
		var err error
		for i := range rv.Len() {
			if i > 0 {
				b = append(b, ", "...)
			}
			if b, err = appendPy(b, rv.Index(i).Interface()); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case reflect.Map:
		return appendPyMap(b, rv)
	}
	raw, err := json.Marshal(rv.Interface())
	if err != nil {
		return b, err
	}
	return appendPyRaw(b, raw)
}

func appendPyMap(b []byte, rv reflect.Value) ([]byte, error) {
	if rv.IsNil() {
		return append(b, "{}"...), nil
	}
	type member struct {
		key string
		num int64
		val reflect.Value
	}
	var ms []member
	numeric := false
	for it := rv.MapRange(); it.Next(); {
		k := it.Key()
		switch k.Kind() {
		case reflect.String:
			ms = append(ms, member{key: k.String(), val: it.Value()})
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			numeric = true
			ms = append(ms, member{key: strconv.FormatInt(k.Int(), 10), num: k.Int(), val: it.Value()})
		default:
			return b, fmt.Errorf("cannot render a map keyed by %s as JSON", k.Type())
		}
	}
	slices.SortFunc(ms, func(x, y member) int {
		if numeric {
			return cmp.Compare(x.num, y.num)
		}
		return cmp.Compare(x.key, y.key)
	})
	b = append(b, '{')
	var err error
	for i, m := range ms {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = pyjson.AppendString(b, m.key)
		b = append(b, ": "...)
		if b, err = appendPy(b, m.val.Interface()); err != nil {
			return b, err
		}
	}
	return append(b, '}'), nil
}

// appendPyRaw re-renders the JSON text raw as Python would after
// json.loads: strings re-escaped, floats as repr, integers verbatim,
// members in their order.
func appendPyRaw(b []byte, raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	// Per open container: whether the next token is its first, and for
	// objects whether it is a key.
	type frame struct {
		object, first, key bool
	}
	var stack []frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 {
				return b, io.ErrUnexpectedEOF
			}
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			b = append(b, byte(d))
			if len(stack) > 0 && stack[len(stack)-1].object {
				stack[len(stack)-1].key = true
			}
			continue
		}
		if n := len(stack); n > 0 {
			f := &stack[n-1]
			switch {
			case f.object && f.key:
				if !f.first {
					b = append(b, ", "...)
				}
			case f.object:
				b = append(b, ": "...)
			default:
				if !f.first {
					b = append(b, ", "...)
				}
			}
			f.first = false
		}
		switch t := tok.(type) {
		case json.Delim:
			b = append(b, byte(t))
			stack = append(stack, frame{object: t == '{', first: true, key: t == '{'})
			continue
		case string:
			b = pyjson.AppendString(b, t)
		case json.Number:
			b = appendPyNumber(b, string(t))
		case bool:
			b = strconv.AppendBool(b, t)
		case nil:
			b = append(b, "null"...)
		}
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].key = !stack[n-1].key
		}
	}
}

// appendPyNumber renders a JSON number as Python reads and writes it back:
// integers keep every digit, anything with a fraction or exponent is a float.
func appendPyNumber(b []byte, s string) []byte {
	if !bytes.ContainsAny([]byte(s), ".eE") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return strconv.AppendInt(b, n, 10) // "-0" is 0
		}
		return append(b, s...)
	}
	f, _ := strconv.ParseFloat(s, 64) // out of range is ±Inf, as in Python
	return pyjson.AppendFloat(b, f)
}
