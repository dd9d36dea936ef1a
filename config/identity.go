package config

import (
	"os/user"
	"strconv"
)

// resolveIdentity turns the uid and gid keys into numbers, as Circus does at
// load time (util.to_uid, to_gid): a name must exist; gid defaults to the
// user's primary group, and Groups are the user's supplementary groups, as
// initgroups would set them.
//
// Unlike Circus, uid 0 means root, not "unset": running as root must be
// asked for explicitly and then it is what you get. A number with no passwd
// entry is accepted (containers often run as such ids) only together with a
// gid, since there is no primary group to take.
func (f *fields) resolveIdentity(w *Watcher) {
	if w.User != "" {
		u, err := lookupUser(w.User)
		switch {
		case err == nil:
			w.UID, _ = strconv.Atoi(u.Uid)
			w.GID, _ = strconv.Atoi(u.Gid)
			if ids, err := u.GroupIds(); err == nil {
				w.Groups = atois(ids)
			}
		case isNumber(w.User) && w.Group != "":
			w.UID, _ = strconv.Atoi(w.User)
		case isNumber(w.User):
			f.errorf("uid", "unknown user id %s (no passwd entry): set gid too", w.User)
		default:
			f.errorf("uid", "unknown user %q", w.User)
		}
	}
	if w.Group != "" {
		g, err := lookupGroup(w.Group)
		switch {
		case err == nil:
			w.GID, _ = strconv.Atoi(g.Gid)
		case isNumber(w.Group):
			w.GID, _ = strconv.Atoi(w.Group)
		default:
			f.errorf("gid", "unknown group %q", w.Group)
		}
	}
}

func lookupUser(s string) (*user.User, error) {
	if isNumber(s) {
		return user.LookupId(s)
	}
	return user.Lookup(s)
}

func lookupGroup(s string) (*user.Group, error) {
	if isNumber(s) {
		return user.LookupGroupId(s)
	}
	return user.LookupGroup(s)
}

func isNumber(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0
}

func atois(ss []string) []int {
	out := make([]int, 0, len(ss))
	for _, s := range ss {
		if n, err := strconv.Atoi(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}
