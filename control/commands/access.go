package commands

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/pubsub"
)

// policyOf is the access policy of one configuration: the Table rebuilds
// it when the arbiter's configuration changes (reloadconfig, SIGHUP, add),
// so that edited [circus] access keys apply without a restart.
type policyOf struct {
	cfg *config.Config
	pol *access.Policy
}

// policy returns the access policy of the running configuration.
func (t *Table) policy() *access.Policy {
	cfg := t.a.Config()
	if p := t.pol.Load(); p != nil && p.cfg == cfg {
		return p.pol
	}
	pol := policyFor(cfg)
	t.pol.Store(&policyOf{cfg: cfg, pol: pol})
	return pol
}

// policyFor builds the access policy of cfg's [circus] keys.
func policyFor(cfg *config.Config) *access.Policy {
	a := cfg.Circus.Access
	return access.New(access.Settings{
		Control:        access.Rule(a.Control),
		Read:           access.Rule(a.Read),
		InsecureRemote: a.InsecureRemote,
	})
}

// authorize refuses req if its peer may not run it, and audits the
// refusal. Without Options.Enforce everything is allowed.
func (t *Table) authorize(req control.Request) *control.Error {
	if !t.opts.Enforce {
		return nil
	}
	err := t.policy().Check(req.Peer, req.Command)
	if err == nil {
		return nil
	}
	t.audit(req, "refused", err.Error(), nil)
	return control.Errorf(control.CommandError, "%v", err)
}

// audited reports whether req is one the audit trail records: every
// command that may change something. Reads (a dashboard's status every
// second) are not.
func audited(req control.Request) bool { return !access.ReadOnly(req.Command) }

// auditedRun returns run, recording its result if req is audited: for
// the commands that run at once rather than in a queue.
func (t *Table) auditedRun(req control.Request, run func(context.Context) control.Reply) func(context.Context) control.Reply {
	if !audited(req) {
		return run
	}
	return func(ctx context.Context) control.Reply {
		rep := run(ctx)
		t.auditReply(req, rep)
		return rep
	}
}

// auditReply records what came of an audited command.
func (t *Table) auditReply(req control.Request, rep control.Reply) {
	if !audited(req) {
		return
	}
	if rep.Err != nil {
		t.audit(req, "error", rep.Err.Reason, nil)
		return
	}
	t.audit(req, "ok", "", resultOf(rep))
}

// resultOf returns a reply's fields as a JSON object (what the command
// says it did), or nil when it has none.
func resultOf(rep control.Reply) []byte {
	if len(rep.Fields) == 0 {
		return nil
	}
	b, err := rep.Render(nil, time.Time{})
	if err != nil {
		return nil
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	delete(m, "status")
	delete(m, "time")
	delete(m, "id")
	return compact(m)
}

// compact renders v as JSON without escaping "<", ">" and "&": properties
// are shell commands, not HTML.
func compact(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return nil
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// audit logs req with its sender and outcome, and publishes it as a
// command event.
func (t *Table) audit(req control.Request, status, reason string, result []byte) {
	p := req.Peer
	a := &pubsub.Audit{
		Command: req.Command, Peer: access.Describe(p), UID: -1, PID: p.PID,
		Via: p.Via, Status: status, Reason: reason, Result: result,
	}
	if p.Origin == access.Local {
		a.UID = p.UID
	}
	if len(req.Properties) > 0 {
		a.Properties = compact(req.Properties)
	}
	name, _ := req.StringOr("name", "")
	level := slog.LevelInfo
	if status == "refused" {
		level = slog.LevelWarn
	}
	attrs := []any{"command", strings.ToLower(req.Command), "peer", a.Peer, "via", a.Via, "status", status}
	if name != "" {
		attrs = append(attrs, "watcher", name)
	}
	if len(a.Properties) > 0 {
		attrs = append(attrs, "properties", string(a.Properties))
	}
	if reason != "" {
		attrs = append(attrs, "reason", reason)
	}
	if len(result) > 0 {
		attrs = append(attrs, "result", string(result))
	}
	t.log.Log(t.ctx, level, "command", attrs...)
	if t.opts.Publish != nil {
		t.opts.Publish(pubsub.Event{Kind: pubsub.Command, Watcher: name, Time: time.Now(), Audit: a})
	}
}

// Check reports whether p may run command under the running
// configuration's access keys (nil without Options.Enforce); the console
// uses it to decide who may see the page at all.
func (t *Table) Check(p access.Peer, command string) error {
	if !t.opts.Enforce {
		return nil
	}
	return t.policy().Check(p, command)
}
