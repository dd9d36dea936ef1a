package control

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
)

// Reply is a handler's answer, rendered by the server with the request's id
// and the current time. Build one with [OK], [State] or [Fail].
type Reply struct {
	// Status is "ok", "error", or, for Circus's status-with-name quirk, a
	// watcher state such as "active".
	Status string
	// Fields are the command's result fields, at the top level after
	// "time", in this order. Keys must not be status, time or id.
	Fields Object
	// Err is the failure of an error reply; nil otherwise.
	Err *Error
}

// OK is a success reply: {"status": "ok", "time": ..., fields..., "id": ...}.
func OK(fields ...Field) Reply { return Reply{Status: "ok", Fields: fields} }

// State is the reply of status with a name, which Circus puts in the status
// field itself: {"status": "active", "time": ..., "id": ...}.
func State(state string) Reply { return Reply{Status: state} }

// Fail is an error reply: {"status": "error", "reason": ..., "tb": null,
// "time": ..., "errno": ..., "id": ...}.
func Fail(err *Error) Reply { return Reply{Status: "error", Err: err} }

// Failf is Fail(Errorf(errno, format, args...)).
func Failf(errno Errno, format string, args ...any) Reply {
	return Fail(Errorf(errno, format, args...))
}

// Render returns the reply frame exactly as Circus writes it, with id (nil
// means null) and the time t as a float of seconds. It fails only when a
// field's value cannot be rendered as JSON.
func (r Reply) Render(id json.RawMessage, t time.Time) ([]byte, error) {
	return r.AppendRender(make([]byte, 0, r.renderSize()), id, t)
}

// renderSize is about what the reply renders to, so that a large one (a
// logs reply of a megabyte) is rendered into one allocation rather than
// grown by doubling through a dozen. The members of an Object beside it
// (logs' cursors, a number per watcher) are counted too: were the room
// short by a byte, the whole megabyte would be copied once more.
func (r Reply) renderSize() int {
	n := 128
	for _, f := range r.Fields {
		switch v := f.Value.(type) {
		case Rendered:
			n += len(f.Key) + 4 + len(v)
		case Object:
			for _, m := range v {
				n += len(m.Key) + 32
			}
		}
	}
	return n
}

// AppendRender is [Reply.Render] appending to b.
func (r Reply) AppendRender(b []byte, id json.RawMessage, t time.Time) ([]byte, error) {
	status := r.Status
	if r.Err != nil {
		status = "error"
	}
	if status == "" {
		status = "ok"
	}
	b = append(b, `{"status": `...)
	b = pyjson.AppendString(b, status)
	if r.Err != nil {
		b = append(b, `, "reason": `...)
		b = pyjson.AppendString(b, r.Err.Reason)
		b = append(b, `, "tb": null`...)
	}
	b = append(b, `, "time": `...)
	b = pyjson.AppendFloat(b, float64(t.UnixNano())/1e9)
	if r.Err != nil {
		b = append(b, `, "errno": `...)
		b = fmt.Appendf(b, "%d", int(r.Err.Errno))
	} else {
		var err error
		for _, f := range r.Fields {
			b = append(b, ", "...)
			b = pyjson.AppendString(b, f.Key)
			b = append(b, ": "...)
			if b, err = appendPy(b, f.Value); err != nil {
				return b, fmt.Errorf("reply field %s: %w", f.Key, err)
			}
		}
	}
	b = append(b, `, "id": `...)
	if len(id) == 0 {
		return append(b, "null}"...), nil
	}
	b, err := appendPyRaw(b, id)
	if err != nil {
		return b, fmt.Errorf("reply id: %w", err)
	}
	return append(b, '}'), nil
}
