package control

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/ringmaster-dev/ringmaster/access"
)

// Request is one decoded control message.
type Request struct {
	// ID is the request's "id", any JSON value, echoed in the reply as it
	// was sent (re-rendered with Python's separators, as Circus does); the
	// JSON null when the message had none.
	ID json.RawMessage
	// Command is the "command" string as sent. Circus matches it without
	// regard to case.
	Command string
	// Properties holds the "properties" object's members, undecoded; empty
	// (not nil) when the message had none. Read them with the typed getters
	// such as [Request.String], which apply Circus's type rules.
	Properties map[string]json.RawMessage
	// MsgType is "cast" for a request that wants no reply; otherwise
	// whatever was sent, usually "" (Circus's "call").
	MsgType string
	// Peer is who sent it, as the server identified the connection; the
	// zero value (access.Unknown) when nobody did.
	Peer access.Peer
}

var jsonNull = json.RawMessage("null")

// IsCast reports whether the request wants no reply.
func (r Request) IsCast() bool { return r.MsgType == "cast" }

// DecodeRequest parses one request frame strictly. On failure it returns
// the *Error to send back (errno 1 "json invalid" for a body that is not
// JSON; errno 3 for JSON that is not a request) and a Request whose ID is
// the id to echo in that reply: the message's "id" when it had one, else
// null. Circus gives no reply at all to the errno 3 cases; we do.
func DecodeRequest(data []byte) (Request, *Error) {
	req := Request{ID: jsonNull}
	if !utf8.Valid(data) || !json.Valid(data) {
		return req, &Error{Errno: InvalidJSON, Reason: "json invalid"}
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if trimmed[0] != '{' {
		return req, Errorf(MessageError, "message invalid: want a JSON object, got %s", jsonKind(trimmed))
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return req, &Error{Errno: InvalidJSON, Reason: "json invalid"}
	}
	if id, ok := top["id"]; ok {
		req.ID = id
	}
	cmd, ok := top["command"]
	if !ok || isNull(cmd) {
		return req, errMissing("command")
	}
	if err := json.Unmarshal(cmd, &req.Command); err != nil || cmd[0] != '"' {
		return req, errType("command", "a string")
	}
	req.Properties = map[string]json.RawMessage{}
	if p, ok := top["properties"]; ok && !isNull(p) {
		if p[0] != '{' {
			return req, errType("properties", "an object")
		}
		if err := json.Unmarshal(p, &req.Properties); err != nil {
			return req, errType("properties", "an object")
		}
	}
	if mt, ok := top["msg_type"]; ok && !isNull(mt) {
		if mt[0] != '"' {
			return req, errType("msg_type", "a string")
		}
		if err := json.Unmarshal(mt, &req.MsgType); err != nil {
			return req, errType("msg_type", "a string")
		}
	}
	return req, nil
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// jsonKind names the kind of the JSON value that starts b.
func jsonKind(b []byte) string {
	switch b[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// Has reports whether the property key is present and not null.
func (r Request) Has(key string) bool {
	v, ok := r.Properties[key]
	return ok && !isNull(v)
}

// prop returns the property, or ok=false when it is absent or null.
func (r Request) prop(key string) (json.RawMessage, bool) {
	v, ok := r.Properties[key]
	if !ok || isNull(v) {
		return nil, false
	}
	return v, true
}

// String returns the required string property key. A missing (or null)
// property is errno 3 "message invalid 'key' is missing"; another type is
// errno 3 "message invalid 'key' must be a string".
func (r Request) String(key string) (string, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return "", errMissing(key)
	}
	return decodeString(key, v)
}

// StringOr is [Request.String] for an optional property: def when absent.
func (r Request) StringOr(key, def string) (string, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return def, nil
	}
	return decodeString(key, v)
}

func decodeString(key string, v json.RawMessage) (string, *Error) {
	var s string
	if v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", errType(key, "a string")
	}
	return s, nil
}

// Int returns the required integer property key: a JSON number without a
// fraction or exponent (as Python's json reads an int), within int64.
// Booleans and numeric strings are refused; the command table converts
// circusctl's string-typed values (kill's pid) itself.
func (r Request) Int(key string) (int64, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return 0, errMissing(key)
	}
	return decodeInt(key, v)
}

// IntOr is [Request.Int] for an optional property: def when absent.
func (r Request) IntOr(key string, def int64) (int64, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return def, nil
	}
	return decodeInt(key, v)
}

func decodeInt(key string, v json.RawMessage) (int64, *Error) {
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, errType(key, "an integer")
	}
	return n, nil
}

// Float returns the required number property key: any JSON number.
func (r Request) Float(key string) (float64, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return 0, errMissing(key)
	}
	return decodeFloat(key, v)
}

// FloatOr is [Request.Float] for an optional property: def when absent.
func (r Request) FloatOr(key string, def float64) (float64, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return def, nil
	}
	return decodeFloat(key, v)
}

func decodeFloat(key string, v json.RawMessage) (float64, *Error) {
	c := v[0]
	if c != '-' && (c < '0' || c > '9') {
		return 0, errType(key, "a number")
	}
	f, err := strconv.ParseFloat(string(v), 64)
	if err != nil && !math.IsInf(f, 0) {
		return 0, errType(key, "a number")
	}
	return f, nil
}

// Bool returns the required boolean property key: JSON true or false only.
func (r Request) Bool(key string) (bool, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return false, errMissing(key)
	}
	return decodeBool(key, v)
}

// BoolOr is [Request.Bool] for an optional property: def when absent, so
// BoolOr("waiting", false) reads Circus's "waiting".
func (r Request) BoolOr(key string, def bool) (bool, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return def, nil
	}
	return decodeBool(key, v)
}

func decodeBool(key string, v json.RawMessage) (bool, *Error) {
	switch string(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, errType(key, "a boolean")
}

// Strings returns the required list-of-strings property key (get's "keys").
func (r Request) Strings(key string) ([]string, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return nil, errMissing(key)
	}
	return decodeStrings(key, v)
}

// StringsOr is [Request.Strings] for an optional property: def when absent.
func (r Request) StringsOr(key string, def []string) ([]string, *Error) {
	v, ok := r.prop(key)
	if !ok {
		return def, nil
	}
	return decodeStrings(key, v)
}

func decodeStrings(key string, v json.RawMessage) ([]string, *Error) {
	var ss []string
	if v[0] != '[' || json.Unmarshal(v, &ss) != nil || bytes.Contains(v, []byte("null")) && hasNullElem(v) {
		return nil, errType(key, "a list of strings")
	}
	if ss == nil {
		ss = []string{}
	}
	return ss, nil
}

// hasNullElem reports whether the JSON array v has a null element, which
// json.Unmarshal would silently turn into "".
func hasNullElem(v json.RawMessage) bool {
	var elems []json.RawMessage
	if json.Unmarshal(v, &elems) != nil {
		return true
	}
	for _, e := range elems {
		if isNull(e) {
			return true
		}
	}
	return false
}
