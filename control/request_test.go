package control

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// malformed are the bad request bodies every layer is tested with.
var malformed = []struct {
	name   string
	body   string
	errno  Errno
	reason string
	id     string
}{
	{"not json", `{"id": "x", "command": `, InvalidJSON, "json invalid", "null"},
	{"empty", ``, InvalidJSON, "json invalid", "null"},
	{"invalid utf8", "{\"id\": \"\xff\", \"command\": \"list\"}", InvalidJSON, "json invalid", "null"},
	{"array", `[]`, MessageError, "message invalid: want a JSON object, got an array", "null"},
	{"string", `"list"`, MessageError, "message invalid: want a JSON object, got a string", "null"},
	{"no command", `{}`, MessageError, "message invalid 'command' is missing", "null"},
	{"command not string", `{"id": "c5", "command": 5}`, MessageError, "message invalid 'command' must be a string", `"c5"`},
	{"properties list", `{"id": 7, "command": "list", "properties": []}`, MessageError, "message invalid 'properties' must be an object", "7"},
	{"msg_type number", `{"id": null, "command": "list", "msg_type": 1}`, MessageError, "message invalid 'msg_type' must be a string", "null"},
}

func TestDecodeRequestMalformed(t *testing.T) {
	t.Parallel()
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tc.body))
			if err == nil {
				t.Fatalf("DecodeRequest(%q) = %+v, nil; want errno %d", tc.body, req, tc.errno)
			}
			if diff := cmp.Diff(&Error{Errno: tc.errno, Reason: tc.reason}, err); diff != "" {
				t.Errorf("DecodeRequest(%q) error (-want +got):\n%s", tc.body, diff)
			}
			if string(req.ID) != tc.id {
				t.Errorf("DecodeRequest(%q).ID = %s, want %s", tc.body, req.ID, tc.id)
			}
		})
	}
}

func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		want Request
	}{
		{"circusctl", `{"id": "a1", "command": "list", "properties": {}}`,
			Request{ID: json.RawMessage(`"a1"`), Command: "list", Properties: map[string]json.RawMessage{}}},
		{"no id no properties", `{"command": "LIST"}`,
			Request{ID: json.RawMessage(`null`), Command: "LIST", Properties: map[string]json.RawMessage{}}},
		{"null properties", `{"id": [1, {"a": 2}], "command": "list", "properties": null}`,
			Request{ID: json.RawMessage(`[1, {"a": 2}]`), Command: "list", Properties: map[string]json.RawMessage{}}},
		{"cast with props", `{"id":1,"command":"incr","properties":{"name":"web","nb":3},"msg_type":"cast"}`,
			Request{ID: json.RawMessage(`1`), Command: "incr", MsgType: "cast",
				Properties: map[string]json.RawMessage{"name": json.RawMessage(`"web"`), "nb": json.RawMessage(`3`)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeRequest([]byte(tc.body))
			if err != nil {
				t.Fatalf("DecodeRequest(%q) = %v", tc.body, err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("DecodeRequest(%q) (-want +got):\n%s", tc.body, diff)
			}
		})
	}
}

func TestPropertyGetters(t *testing.T) {
	t.Parallel()
	req, derr := DecodeRequest([]byte(`{"command": "x", "properties": {"name": "web", "nb": 3, "f": 1.5,
		"w": true, "keys": ["a", "b"], "s": "3", "n": null, "bad": [1], "nulls": ["a", null], "big": 1e3}}`))
	if derr != nil {
		t.Fatal(derr)
	}
	errText := func(e *Error) string {
		if e == nil {
			return ""
		}
		return e.Reason
	}
	tests := []struct {
		name    string
		got     any
		err     *Error
		want    any
		wantErr string
	}{}
	add := func(name string, want any, wantErr string, got any, err *Error) {
		tests = append(tests, struct {
			name    string
			got     any
			err     *Error
			want    any
			wantErr string
		}{name, got, err, want, wantErr})
	}
	s, e := req.String("name")
	add("String(name)", "web", "", s, e)
	s, e = req.String("missing")
	add("String(missing)", "", "message invalid 'missing' is missing", s, e)
	s, e = req.String("n")
	add("String(null)", "", "message invalid 'n' is missing", s, e)
	s, e = req.String("nb")
	add("String(nb)", "", "message invalid 'nb' must be a string", s, e)
	s, e = req.StringOr("missing", "dflt")
	add("StringOr(missing)", "dflt", "", s, e)
	i, e := req.Int("nb")
	add("Int(nb)", int64(3), "", i, e)
	i, e = req.Int("s")
	add("Int(string)", int64(0), "message invalid 's' must be an integer", i, e)
	i, e = req.Int("f")
	add("Int(float)", int64(0), "message invalid 'f' must be an integer", i, e)
	i, e = req.Int("w")
	add("Int(bool)", int64(0), "message invalid 'w' must be an integer", i, e)
	i, e = req.IntOr("missing", 1)
	add("IntOr(missing)", int64(1), "", i, e)
	f, e := req.Float("f")
	add("Float(f)", 1.5, "", f, e)
	f, e = req.Float("big")
	add("Float(1e3)", 1000.0, "", f, e)
	f, e = req.Float("s")
	add("Float(string)", 0.0, "message invalid 's' must be a number", f, e)
	b, e := req.Bool("w")
	add("Bool(w)", true, "", b, e)
	b, e = req.BoolOr("nb", false)
	add("BoolOr(int)", false, "message invalid 'nb' must be a boolean", b, e)
	b, e = req.BoolOr("waiting", false)
	add("BoolOr(missing)", false, "", b, e)
	ss, e := req.Strings("keys")
	add("Strings(keys)", []string{"a", "b"}, "", ss, e)
	ss, e = req.Strings("bad")
	add("Strings([1])", []string(nil), "message invalid 'bad' must be a list of strings", ss, e)
	ss, e = req.Strings("nulls")
	add("Strings(with null)", []string(nil), "message invalid 'nulls' must be a list of strings", ss, e)
	ss, e = req.Strings("name")
	add("Strings(string)", []string(nil), "message invalid 'name' must be a list of strings", ss, e)
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, tc.got); diff != "" {
			t.Errorf("%s value (-want +got):\n%s", tc.name, diff)
		}
		if got := errText(tc.err); got != tc.wantErr {
			t.Errorf("%s error = %q, want %q", tc.name, got, tc.wantErr)
		}
		if tc.err != nil && tc.err.Errno != MessageError {
			t.Errorf("%s errno = %d, want 3", tc.name, tc.err.Errno)
		}
	}
}
