package control

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzDecodeRequest: decoding never panics, and whatever it accepts or
// refuses renders as a reply that is valid JSON echoing the id.
func FuzzDecodeRequest(f *testing.F) {
	for _, m := range malformed {
		f.Add([]byte(m.body))
	}
	for _, l := range literals {
		f.Add([]byte(l.request))
	}
	f.Add([]byte(`{"id": {"a": [1.5e300, "\ud83d\ude00"]}, "command": "x", "properties": {"nb": -0}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, derr := DecodeRequest(data)
		rep := OK(Field{"properties", req.Properties})
		if derr != nil {
			if derr.Errno != InvalidJSON && derr.Errno != MessageError {
				t.Fatalf("DecodeRequest(%q) errno = %d", data, derr.Errno)
			}
			rep = Fail(derr)
		}
		out, err := rep.Render(req.ID, time.Now())
		if err != nil {
			t.Fatalf("Render after DecodeRequest(%q): %v", data, err)
		}
		if !json.Valid(out) {
			t.Fatalf("Render after DecodeRequest(%q) = %q, not JSON", data, out)
		}
		for k := range req.Properties {
			req.String(k)
			req.Int(k)
			req.Float(k)
			req.Bool(k)
			req.Strings(k)
		}
	})
}
