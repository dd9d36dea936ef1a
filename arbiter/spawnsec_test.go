package arbiter_test

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// groupEntry is one line of the group database, as getent reads it through
// NSS (so the expectations below do not share os/user's code with the
// arbiter).
type groupEntry struct {
	name    string
	gid     int
	members []string
}

func groupDB(t *testing.T) []groupEntry {
	t.Helper()
	// The file, not `getent group`: the arbiters of parallel tests reap
	// every child of this process, so os/exec cannot wait for its own.
	// This machine's group database is files (nsswitch.conf).
	out, err := os.ReadFile("/etc/group")
	if err != nil {
		t.Fatalf("group database: %v", err)
	}
	var db []groupEntry
	for line := range strings.Lines(string(out)) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 4 {
			continue
		}
		gid, err := strconv.Atoi(f[2])
		if err != nil {
			continue
		}
		e := groupEntry{name: f[0], gid: gid}
		if f[3] != "" {
			e.members = strings.Split(f[3], ",")
		}
		db = append(db, e)
	}
	return db
}

// groupList is getgrouplist(name, gid): gid, then every group of the
// database that lists name as a member; sorted, as the kernel keeps them.
func groupList(db []groupEntry, name string, gid int) []int {
	gs := []int{gid}
	for _, e := range db {
		if slices.Contains(e.members, name) {
			gs = append(gs, e.gid)
		}
	}
	slices.Sort(gs)
	return slices.Compact(gs)
}

// procIDs reads the real uid and gid and the supplementary groups of pid
// from /proc/PID/status.
func procIDs(t *testing.T, pid int) (uid, gid int, groups []int) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		key, val, _ := strings.Cut(strings.TrimSpace(line), ":")
		f := strings.Fields(val)
		switch key {
		case "Uid":
			uid, _ = strconv.Atoi(f[0])
		case "Gid":
			gid, _ = strconv.Atoi(f[0])
		case "Groups":
			groups = []int{}
			for _, s := range f {
				g, _ := strconv.Atoi(s)
				groups = append(groups, g)
			}
			slices.Sort(groups)
		}
	}
	return uid, gid, groups
}

// memberUser finds a user of this machine listed as a member of some group
// other than its primary one, and a group it has nothing to do with.
func memberUser(t *testing.T, db []groupEntry) (u *user.User, other groupEntry) {
	t.Helper()
	for _, e := range db {
		for _, m := range e.members {
			cand, err := user.Lookup(m)
			if err != nil || cand.Uid == "0" {
				continue
			}
			primary, _ := strconv.Atoi(cand.Gid)
			mine := groupList(db, m, primary)
			for _, o := range db {
				if o.gid != 0 && !slices.Contains(mine, o.gid) {
					return cand, o
				}
			}
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no user here is a member of a group other than its own (postgres in ssl-cert was, when this was written)")
	}
	t.Skip("no user here is a member of a group other than its own")
	return nil, groupEntry{}
}

// Issue 15: a worker's supplementary groups are exactly what
// initgroups(user, gid) sets, for the gid the watcher names, never the
// user's passwd group when gid names another; a watcher naming neither uid
// nor gid leaves the arbiter's own.
func TestWorkerGroups(t *testing.T) {
	t.Parallel()
	testproc.NeedRoot(t, "change a worker's credentials")
	db := groupDB(t)
	member, other := memberUser(t, db)
	memberUID, _ := strconv.Atoi(member.Uid)
	memberGID, _ := strconv.Atoi(member.Gid)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skipf("no user nobody: %v", err)
	}
	nobodyUID, _ := strconv.Atoi(nobody.Uid)
	if nobody.Gid == strconv.Itoa(other.gid) {
		t.Skipf("nobody's primary group is %s", other.name)
	}
	const strangerUID = 4242420
	if _, err := user.LookupId(strconv.Itoa(strangerUID)); err == nil {
		t.Skipf("uid %d exists here", strangerUID)
	}
	_, _, ownGroups := procIDs(t, os.Getpid())

	tests := []struct {
		name, uid, gid string
		wantUID        int
		wantGID        int
		wantGroups     []int
	}{
		// The bug: the user's passwd group was among the worker's groups
		// and the gid named was not.
		{"member, another gid", member.Username, other.name, memberUID, other.gid, groupList(db, member.Username, other.gid)},
		{"nobody, another gid", "nobody", other.name, nobodyUID, other.gid, groupList(db, "nobody", other.gid)},
		{"uid alone", member.Username, "", memberUID, memberGID, groupList(db, member.Username, memberGID)},
		// As the arbiter's user (root here), with that gid.
		{"gid alone", "", other.name, 0, other.gid, groupList(db, "root", other.gid)},
		{"root named", "root", other.name, 0, other.gid, groupList(db, "root", other.gid)},
		// No passwd entry, so no group database entry to read: the gid alone.
		{"uid without passwd entry", strconv.Itoa(strangerUID), other.name, strangerUID, other.gid, []int{other.gid}},
		{"neither", "", "", 0, os.Getgid(), ownGroups},
	}
	ini := ""
	for i, tt := range tests {
		ini += fmt.Sprintf("[watcher:w%d]\ncmd = WORKER sleep\n", i)
		if tt.uid != "" {
			ini += "uid = " + tt.uid + "\n"
		}
		if tt.gid != "" {
			ini += "gid = " + tt.gid + "\n"
		}
	}
	r := start(t, ini)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fmt.Sprintf("w%d", i)
			var pids []int
			waitFor(t, name+"'s worker", 10*time.Second, func() bool {
				pids = r.pids(t, name)
				return len(pids) == 1
			})
			// The worker has execed: it runs testworker, not the arbiter.
			waitFor(t, name+"'s exec", 10*time.Second, func() bool {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pids[0]))
				return bytes.HasSuffix(bytes.TrimRight(b, "\x00"), []byte("sleep"))
			})
			uid, gid, groups := procIDs(t, pids[0])
			if uid != tt.wantUID || gid != tt.wantGID || !slices.Equal(groups, tt.wantGroups) {
				t.Errorf("uid = %q, gid = %q: worker's uid, gid, groups = %d, %d, %v, want %d, %d, %v",
					tt.uid, tt.gid, uid, gid, groups, tt.wantUID, tt.wantGID, tt.wantGroups)
			}
		})
	}
}
