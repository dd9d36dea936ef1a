package config

import (
	"maps"
	"net/url"
	"strconv"
	"strings"
)

// Access is who may drive the control endpoint and the console, from the
// [circus] keys control_users, control_groups, read_users, read_groups and
// insecure_remote_control (package access applies it). Root and the
// arbiter's own user may always do everything; everyone else nothing,
// unless listed.
type Access struct {
	// Control may run every command; Read only those that change nothing.
	Control, Read AccessRule
	// InsecureRemote lets a tcp control endpoint listen beyond loopback,
	// where peers cannot be identified and so may do everything.
	InsecureRemote bool
}

// AccessRule is one list of users and groups, resolved to ids at load.
type AccessRule struct {
	Anyone bool // the list was "*"
	Users  []int
	Groups []int
}

var accessKeys = []string{"control_users", "control_groups", "read_users", "read_groups", "insecure_remote_control"}

// readAccess reads the access keys of [circus]. endpoint_owner, Circus's
// way to let one user drive an ipc endpoint, grants that user control.
func (f *fields) readAccess(c *Circus) {
	a := &c.Access
	f.accessList("control_users", &a.Control, false)
	f.accessList("control_groups", &a.Control, true)
	f.accessList("read_users", &a.Read, false)
	f.accessList("read_groups", &a.Read, true)
	f.boolean("insecure_remote_control", &a.InsecureRemote)
	if c.EndpointOwner != "" {
		if u, err := lookupUser(c.EndpointOwner); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			a.Control.Users = append(a.Control.Users, uid)
		} else {
			f.errorf("endpoint_owner", "unknown user %q", c.EndpointOwner)
		}
	}
	if host, ok := tcpHost(c.Endpoint); ok && !IsLoopbackHost(host) && !a.InsecureRemote {
		f.errorf("endpoint", "%s listens beyond this machine, where nobody can be identified and anyone who can connect could run programs as the arbiter's user: bind 127.0.0.1 or use ipc://, or set insecure_remote_control = true to accept that", c.Endpoint)
	}
}

// accessList reads one list key: names or numeric ids, separated by
// commas or spaces, or "*" for everyone.
func (f *fields) accessList(key string, r *AccessRule, groups bool) {
	v, ok := f.get(key)
	if !ok {
		return
	}
	for _, name := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		if name == "*" {
			r.Anyone = true
			continue
		}
		id, ok := resolveID(name, groups)
		switch {
		case !ok && groups:
			f.errorf(key, "unknown group %q", name)
		case !ok:
			f.errorf(key, "unknown user %q", name)
		case groups:
			r.Groups = append(r.Groups, id)
		default:
			r.Users = append(r.Users, id)
		}
	}
}

// resolveID returns the id of a user (or group) name. A number with no
// entry (a container's uid) is still an id.
func resolveID(name string, group bool) (int, bool) {
	var id string
	if group {
		if g, err := lookupGroup(name); err == nil {
			id = g.Gid
		}
	} else if u, err := lookupUser(name); err == nil {
		id = u.Uid
	}
	if id == "" && isNumber(name) {
		id = name
	}
	n, err := strconv.Atoi(id)
	return n, err == nil
}

// tcpHost returns the host of a tcp:// endpoint ("*" for every interface).
func tcpHost(endpoint string) (string, bool) {
	rest, ok := strings.CutPrefix(endpoint, "tcp://")
	if !ok {
		return "", false
	}
	u, err := url.Parse("tcp://" + rest)
	if err != nil {
		return "", false
	}
	return u.Hostname(), true
}

// WithAccessOf returns c with the access keys of n: what a reload applies
// of a changed [circus] section, whose endpoints stay those bound at
// start. Options, which globaloptions shows, follows.
func (c Circus) WithAccessOf(n Circus) Circus {
	c.Access = n.Access
	opts := maps.Clone(c.Options)
	if opts == nil {
		opts = map[string]string{}
	}
	for _, k := range accessKeys {
		if v, ok := n.Options[k]; ok {
			opts[k] = v
		} else {
			delete(opts, k)
		}
	}
	c.Options = opts
	return c
}
