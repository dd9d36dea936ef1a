package config

import (
	"os"
	"os/user"
	"strconv"
)

// resolveIdentity turns the uid and gid keys into numbers, as Circus does at
// load time (util.to_uid, to_gid): a name must exist; gid defaults to the
// user's primary group. Groups are what initgroups(user, gid) sets, for the
// gid the watcher runs with (see [Watcher]).
//
// Unlike Circus, uid 0 means root, not "unset": running as root must be
// asked for explicitly and then it is what you get. A number with no passwd
// entry is accepted (containers often run as such ids) only together with a
// gid, since there is no primary group to take.
func (f *fields) resolveIdentity(w *Watcher) {
	var u *user.User
	if w.User != "" {
		var err error
		u, err = lookupUser(w.User)
		switch {
		case err == nil:
			w.UID, _ = strconv.Atoi(u.Uid)
			w.GID, _ = strconv.Atoi(u.Gid)
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
	if w.GID < 0 {
		return // neither key, or an error above
	}
	if w.User == "" {
		// The worker keeps the arbiter's uid: its groups are that user's
		// for the new gid, never the arbiter's own (root's, usually).
		u, _ = user.LookupId(strconv.Itoa(os.Getuid()))
	}
	w.Groups = initgroups(u, w.GID)
}

// initgroups returns the groups initgroups(u, gid) would set: gid and every
// group of the group database that lists u as a member; gid alone for a
// user with no passwd entry. It is getgrouplist(3) with the watcher's gid,
// which is what Circus's os.initgroups(username, gid) sets: u.GroupIds with
// the user's own primary group would keep that group when gid names
// another (issue 15). Both of os/user's implementations (cgo's
// getgrouplist, and the pure-Go reading of /etc/group) take the group to
// start from out of User.Gid.
func initgroups(u *user.User, gid int) []int {
	if u == nil {
		return []int{gid}
	}
	v := *u
	v.Gid = strconv.Itoa(gid)
	ids, err := v.GroupIds()
	if err != nil {
		// The group database cannot be read (only an NSS failure does
		// this): the worker gets fewer groups, never the arbiter's.
		return []int{gid}
	}
	return atois(ids)
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
