package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// reply is a decoded reply frame. Numbers stay json.Number, so that they
// print as the arbiter wrote them ("0.0", not "0").
type reply struct {
	raw json.RawMessage
	m   map[string]any
}

func decodeReply(raw json.RawMessage) (reply, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return reply{}, fmt.Errorf("reply %s: %w", raw, err)
	}
	return reply{raw: raw, m: m}, nil
}

// status is the reply's status: "ok", "error", or a watcher state.
func (r reply) status() string {
	s, _ := r.m["status"].(string)
	return s
}

// renderJSON is --json's output: the reply frame as it came, as Circus
// prints it (its json.dumps re-renders with the same separators), or with
// --prettify indented by two with sorted keys, as Circus's prettify does.
func renderJSON(raw json.RawMessage, pretty bool) (string, error) {
	if !pretty {
		return string(raw), nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return "", fmt.Errorf("reply %s: %w", raw, err)
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil { // maps encode with sorted keys
		return "", err
	}
	return strings.TrimSuffix(b.String(), "\n"), nil
}

// The text renderers below print a success reply for a person. Where
// Circus's circusctl prints something scripts read (a number, a
// comma-separated list, "name: state" lines), they print the same; the
// process and socket listings are aligned tables instead of Circus's
// run-together fields.

func incrText(r reply, _ *parsed) (string, error) {
	if _, ok := r.m["singleton"]; ok {
		return "This watcher is a Singleton - not changing the number of processes", nil
	}
	if n, ok := r.m["numprocesses"]; ok {
		return cell(n), nil
	}
	return "ok", nil // not waiting: the reply carries no count
}

func numberText(key string) func(reply, *parsed) (string, error) {
	return func(r reply, _ *parsed) (string, error) {
		n, ok := r.m[key]
		if !ok {
			return "", fmt.Errorf("reply without %q", key)
		}
		return cell(n), nil
	}
}

func listText(r reply, _ *parsed) (string, error) {
	key := "watchers"
	if _, ok := r.m["pids"]; ok {
		key = "pids"
	}
	items, ok := r.m[key].([]any)
	if !ok {
		return "", errors.New("reply has neither 'pids' nor 'watchers'")
	}
	s := make([]string, len(items))
	for i, v := range items {
		s[i] = cell(v)
	}
	return strings.Join(s, ","), nil
}

func statusText(r reply, a *parsed) (string, error) {
	if a.terminal || a.on("table") {
		name := ""
		if len(a.args) > 0 {
			name = a.args[0]
		}
		if out, ok, err := statusTable(r, name, time.Now()); ok || err != nil {
			return out, err
		}
	}
	withDetail := func(state string, detail any) string {
		if d, ok := detail.(string); ok && d != "" {
			return state + " (" + d + ")"
		}
		return state
	}
	if st, ok := r.m["statuses"].(map[string]any); ok {
		details, _ := r.m["details"].(map[string]any)
		names := sortedKeys(st)
		lines := make([]string, len(names))
		for i, n := range names {
			lines[i] = n + ": " + withDetail(cell(st[n]), details[n])
		}
		return strings.Join(lines, "\n"), nil
	}
	// status NAME: the state is the reply's status itself.
	return withDetail(r.status(), r.m["detail"]), nil
}

// optionsText is options, get and globaloptions: "key: value" lines in the
// reply's order, values aligned, each written as Circus's convert_opt
// writes it (True/False, env as K=V,... sorted, null as nothing).
func optionsText(r reply, _ *parsed) (string, error) {
	members, err := orderedMembers(r.raw, "options")
	if err != nil {
		return "", err
	}
	var rows [][]string
	for _, kv := range members {
		rows = append(rows, []string{kv.key + ":", optionValue(kv.key, kv.value)})
	}
	return table(nil, rows, 1), nil
}

func optionValue(key string, raw json.RawMessage) string {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if d.Decode(&v) != nil {
		return string(raw)
	}
	if env, ok := v.(map[string]any); ok && key == "env" {
		var kv []string
		for _, k := range sortedKeys(env) {
			kv = append(kv, k+"="+cell(env[k]))
		}
		return strings.Join(kv, ",")
	}
	switch v := v.(type) {
	case nil:
		return ""
	case bool:
		if v {
			return "True"
		}
		return "False"
	case string, json.Number:
		return cell(v)
	}
	return compactJSON(raw)
}

func socketsText(r reply, _ *parsed) (string, error) {
	socks, ok := r.m["sockets"].([]any)
	if !ok {
		return "", errors.New("reply without 'sockets'")
	}
	var rows [][]string
	for _, s := range socks {
		m, _ := s.(map[string]any)
		addr := cell(m["path"])
		if _, unix := m["path"]; !unix {
			addr = net.JoinHostPort(cell(m["host"]), cell(m["port"]))
		}
		rows = append(rows, []string{cell(m["fd"]), cell(m["name"]), addr, cell(m["backlog"])})
	}
	return table([]string{"FD", "NAME", "ADDRESS", "BACKLOG"}, rows, 2), nil
}

// procHeader is the stats and dstats columns: the fields of Circus's
// process info (mem_info1 and mem_info2 are resident and virtual memory).
var procHeader = []string{"PID", "CMD", "USER", "NICE", "RSS", "VMS", "CPU%", "MEM%", "CTIME", "AGE"}

// procRows appends the rows of one process and its children, the
// children's pids indented under it. info is Circus's process info, or a
// string where the arbiter could not read one ("No such process").
func procRows(rows [][]string, label, pid string, info any) [][]string {
	m, ok := info.(map[string]any)
	if !ok {
		return append(rows, []string{label, pid, cell(info)})
	}
	if pid == "" {
		pid = cell(m["pid"])
	}
	age := "-"
	if n, ok := m["age"].(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			age = age2str(f)
		}
	}
	rows = append(rows, []string{label, pid, cell(m["cmdline"]), cell(m["username"]), cell(m["nice"]),
		cell(m["mem_info1"]), cell(m["mem_info2"]), cell(m["cpu"]), cell(m["mem"]), cell(m["ctime"]), age})
	children, _ := m["children"].([]any)
	for _, c := range children {
		cm, _ := c.(map[string]any)
		rows = procRows(rows, "", "  "+cell(cm["pid"]), c)
	}
	return rows
}

func statsText(r reply, a *parsed) (string, error) {
	var rows [][]string
	switch {
	case r.m["infos"] != nil:
		infos, _ := r.m["infos"].(map[string]any)
		for _, name := range sortedKeys(infos) {
			rows = watcherRows(rows, name, infos[name])
		}
	case r.m["name"] != nil:
		rows = watcherRows(rows, cell(r.m["name"]), r.m["info"])
	case r.m["process"] != nil:
		rows = procRows(rows, a.args[0], cell(r.m["process"]), r.m["info"])
	default:
		return "", errors.New("reply has neither 'infos', 'name' nor 'process'")
	}
	return table(append([]string{"WATCHER"}, procHeader...), rows, 2), nil
}

// watcherRows appends a watcher's processes ({"<pid>": info}), by pid.
func watcherRows(rows [][]string, name string, info any) [][]string {
	procs, _ := info.(map[string]any)
	pids := sortedKeys(procs)
	slices.SortStableFunc(pids, func(x, y string) int {
		a, errA := strconv.Atoi(x)
		b, errB := strconv.Atoi(y)
		if errA != nil || errB != nil {
			return strings.Compare(x, y)
		}
		return a - b
	})
	for i, pid := range pids {
		label := name
		if i > 0 {
			label = ""
		}
		rows = procRows(rows, label, pid, procs[pid])
	}
	if len(pids) == 0 {
		rows = append(rows, []string{name, "-"})
	}
	return rows
}

func dstatsText(r reply, _ *parsed) (string, error) {
	info, ok := r.m["info"]
	if !ok {
		return "", errors.New("reply without 'info'")
	}
	return table(append([]string{"PROCESS"}, procHeader...), procRows(nil, "arbiter", "", info), 2), nil
}

// ipythonText: Circus's circusctl would attach an IPython console to the
// kernel; this one says how to.
func ipythonText(r reply, _ *parsed) (string, error) {
	if shell, ok := r.m["shell"].(string); ok && shell != "" {
		return fmt.Sprintf("IPython kernel started: connect with  ipython console --existing %s", shell), nil
	}
	return "", &failure{"could not start ipython kernel: " + cell(r.m["msg"])}
}

// failure is a success reply that reports a failure all the same, such as
// ipython's {"status": "ok", "shell": false}: exit status 3, as for an
// error reply.
type failure struct{ reason string }

func (f *failure) Error() string { return f.reason }

// cell is a JSON value as a table shows it: strings bare, numbers as sent.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return strconv.FormatBool(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func compactJSON(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return string(raw)
	}
	return b.String()
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// table aligns rows under header (none if nil), columns padding spaces
// apart, without trailing spaces.
func table(header []string, rows [][]string, padding int) string {
	var b bytes.Buffer
	w := tabwriter.NewWriter(&b, 0, 8, padding, ' ', 0)
	if header != nil {
		fmt.Fprintln(w, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		fmt.Fprintln(w, strings.Join(r, "\t"))
	}
	w.Flush()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

type member struct {
	key   string
	value json.RawMessage
}

// orderedMembers returns the members of the reply's top-level object key
// in the order they were sent: Circus prints options in the arbiter's
// order, and get in the order the keys were asked for.
func orderedMembers(raw json.RawMessage, key string) ([]member, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil, fmt.Errorf("reply %s: not an object", raw)
	}
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, err
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, err
		}
		if t != key {
			continue
		}
		od := json.NewDecoder(bytes.NewReader(v))
		if t, err := od.Token(); err != nil || t != json.Delim('{') {
			return nil, fmt.Errorf("reply's %q is not an object", key)
		}
		var ms []member
		for od.More() {
			k, err := od.Token()
			if err != nil {
				return nil, err
			}
			var mv json.RawMessage
			if err := od.Decode(&mv); err != nil {
				return nil, err
			}
			ms = append(ms, member{k.(string), mv})
		}
		return ms, nil
	}
	return nil, fmt.Errorf("reply without %q", key)
}
