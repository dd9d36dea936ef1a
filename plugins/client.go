package plugins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/pyjson"
)

// callTimeout bounds one command: the table answers reads at once and
// commands sent without waiting once queued, so only a stuck arbiter takes
// this long.
const callTimeout = 30 * time.Second

// client is a plugin's control connection, as a Circus plugin's DEALER
// socket is: requests are Circus's JSON messages, and replies are decoded
// from the frame a control client would receive, so a plugin reads the same
// fields, types and "N/A"s as Circus's.
type client struct {
	name string // the plugin's, for the audit trail
	cmds Commands
	log  *slog.Logger
	seq  atomic.Uint64
}

// reply is a decoded reply frame: its top-level fields, undecoded.
type reply map[string]json.RawMessage

// callError is an error reply.
type callError struct {
	command string
	reason  string
}

func (e *callError) Error() string { return e.command + ": " + e.reason }

// call sends command with props (encoded as JSON) and returns the reply;
// an error reply is a *callError.
func (c *client) call(ctx context.Context, command string, props map[string]any) (reply, error) {
	req := control.Request{
		ID:         json.RawMessage(strconv.Quote("plugin-" + strconv.FormatUint(c.seq.Add(1), 10))),
		Command:    command,
		Properties: map[string]json.RawMessage{},
		// Circus's plugins drive the arbiter through its socket as the
		// arbiter's own user; ours are the arbiter itself.
		Peer: access.Peer{Origin: access.Internal, Name: "plugin " + c.name, Via: "plugin"},
	}
	for k, v := range props {
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: property %s: %w", command, k, err)
		}
		req.Properties[k] = b
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	frame, err := c.cmds.Accept(req)(ctx).Render(req.ID, time.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", command, err)
	}
	var r reply
	if err := json.Unmarshal(frame, &r); err != nil {
		return nil, fmt.Errorf("%s: reply %q: %w", command, frame, err)
	}
	if status, _ := r.str("status"); status == "error" {
		reason, _ := r.str("reason")
		return r, &callError{command: command, reason: reason}
	}
	return r, nil
}

// cast sends command without waiting for it to be done, as Circus's
// plugins cast theirs; a refusal is logged, since nobody else will see it.
func (c *client) cast(ctx context.Context, command string, props map[string]any) {
	if _, err := c.call(ctx, command, props); err != nil && ctx.Err() == nil {
		c.log.Warn("command refused", "command", command, "err", err)
	}
}

// str returns the string field key.
func (r reply) str(key string) (string, bool) {
	var s string
	err := json.Unmarshal(r[key], &s)
	return s, err == nil
}

// stringList returns the list of strings field key.
func (r reply) stringList(key string) []string {
	var ss []string
	_ = json.Unmarshal(r[key], &ss)
	return ss
}

// field is one member of a JSON object, in the order written.
type field struct {
	key   string
	value json.RawMessage
}

// members returns the members of the JSON object raw in order, as Python's
// json.loads keeps them; nil if raw is not an object.
func members(raw json.RawMessage) []field {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil
		}
		key, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil
		}
		out = append(out, field{key, v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil
	}
	return out
}

// pyNum is a JSON number as Python's json reads it: an int, or a float when
// written with a fraction or an exponent. Circus formats metrics with
// "%s", which tells them apart ("12" against "12.0").
type pyNum struct {
	v       float64
	isFloat bool
}

// number reads raw as a pyNum; ok is false for anything else ("N/A").
func number(raw json.RawMessage) (n pyNum, ok bool) {
	s := string(bytes.TrimSpace(raw))
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || len(s) == 0 || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return pyNum{}, false
	}
	return pyNum{v: f, isFloat: bytes.ContainsAny([]byte(s), ".eE")}, true
}

func (n pyNum) String() string {
	if n.isFloat {
		return string(pyjson.AppendFloat(nil, n.v))
	}
	return strconv.FormatFloat(n.v, 'f', 0, 64)
}

// maxOf is Python's max(): the first largest. xs must not be empty.
func maxOf(xs []pyNum) pyNum {
	m := xs[0]
	for _, x := range xs[1:] {
		if x.v > m.v {
			m = x
		}
	}
	return m
}

// sumOf is Python's sum(): an int unless a float takes part.
func sumOf(xs []pyNum) pyNum {
	var s pyNum
	for _, x := range xs {
		s.v += x.v
		s.isFloat = s.isFloat || x.isFloat
	}
	return s
}

// jsonString reads raw as a JSON string.
func jsonString(raw []byte) (string, bool) {
	var s string
	err := json.Unmarshal(raw, &s)
	return s, err == nil
}
