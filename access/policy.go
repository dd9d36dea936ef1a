package access

import (
	"fmt"
	"os"
	"os/user"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Level is what a peer may do.
type Level int

const (
	// None: nothing, not even status.
	None Level = iota
	// Read: the commands that change nothing (see [ReadOnly]).
	Read
	// Control: every command.
	Control
)

func (l Level) String() string {
	switch l {
	case Read:
		return "read"
	case Control:
		return "control"
	}
	return "none"
}

// readOnly are Circus's commands that change nothing. Any other command,
// one unknown included, needs Control: a command added to the table later
// is safe until it is listed here.
var readOnly = map[string]bool{
	"dstats": true, "get": true, "globaloptions": true, "list": true, "listsockets": true,
	"numprocesses": true, "numwatchers": true, "options": true, "stats": true, "status": true,
	"tail": true, "logs": true, "upgradestatus": true,
}

// ReadOnly reports whether command (matched without regard to case, as
// Circus does) changes nothing, so that Read is enough to run it.
func ReadOnly(command string) bool { return readOnly[strings.ToLower(command)] }

// Rule is one list of users and groups, by id.
type Rule struct {
	Anyone bool // every local user
	Users  []int
	Groups []int
}

// Settings are the [circus] access keys, resolved to ids.
type Settings struct {
	// Control may run every command; Read only those that change nothing.
	Control, Read Rule
	// InsecureRemote gives Remote peers Control: the endpoint was bound
	// beyond loopback on purpose, with no way to identify anyone.
	InsecureRemote bool
}

// Policy decides what each peer may do, from the [circus] access keys.
// Its methods are safe for concurrent use.
type Policy struct {
	access Settings
	self   int // the arbiter's effective uid: it may always do everything

	mu     sync.Mutex
	groups map[int]groupsEntry // a uid's groups from the user database
}

type groupsEntry struct {
	gids []int
	at   time.Time
}

// groupsTTL is how long a uid's groups are trusted: long enough that a
// burst of circusctl calls reads /etc/group once, short enough that
// removing someone from a group takes effect without a reload.
const groupsTTL = 5 * time.Second

// New returns the policy of a, for an arbiter running as the current
// effective uid.
func New(a Settings) *Policy {
	return &Policy{access: a, self: os.Geteuid(), groups: map[int]groupsEntry{}}
}

// Level returns what p may do.
func (pol *Policy) Level(p Peer) Level {
	switch p.Origin {
	case Internal, Authenticated:
		return Control
	case Remote:
		if pol.access.InsecureRemote {
			return Control
		}
		return None
	case Local:
	default:
		return None
	}
	if p.UID == 0 || p.UID == pol.self {
		return Control
	}
	if pol.matches(pol.access.Control, p) {
		return Control
	}
	if pol.matches(pol.access.Read, p) {
		return Read
	}
	return None
}

// matches reports whether a local peer is in r: listed, or in a listed
// group (its gid as the kernel reported it, or a group the user database
// gives its uid).
func (pol *Policy) matches(r Rule, p Peer) bool {
	if r.Anyone || slices.Contains(r.Users, p.UID) {
		return true
	}
	if len(r.Groups) == 0 {
		return false
	}
	if p.GID >= 0 && slices.Contains(r.Groups, p.GID) {
		return true
	}
	for _, g := range pol.groupsOf(p.UID) {
		if slices.Contains(r.Groups, g) {
			return true
		}
	}
	return false
}

// groupsOf returns uid's groups per the user database (its primary group
// and those listing it), cached for groupsTTL. A uid with no passwd entry
// has none.
func (pol *Policy) groupsOf(uid int) []int {
	now := time.Now()
	pol.mu.Lock()
	e, ok := pol.groups[uid]
	pol.mu.Unlock()
	if ok && now.Sub(e.at) < groupsTTL {
		return e.gids
	}
	var gids []int
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		if ids, err := u.GroupIds(); err == nil {
			for _, s := range ids {
				if n, err := strconv.Atoi(s); err == nil {
					gids = append(gids, n)
				}
			}
		}
	}
	pol.mu.Lock()
	pol.groups[uid] = groupsEntry{gids: gids, at: now}
	pol.mu.Unlock()
	return gids
}

// Check returns nil if p may run command, else a refusal that names the
// peer and the setting that would allow it.
func (pol *Policy) Check(p Peer, command string) error {
	need := Control
	if ReadOnly(command) {
		need = Read
	}
	if pol.Level(p) >= need {
		return nil
	}
	return &Denied{Peer: p, Command: command, Need: need, reason: pol.remedy(p, need)}
}

// Denied is a refused command.
type Denied struct {
	Peer    Peer
	Command string
	Need    Level
	reason  string
}

func (d *Denied) Error() string {
	return fmt.Sprintf("permission denied: %s may not run %q: %s", Describe(d.Peer), d.Command, d.reason)
}

// remedy says what would let p do what it needs.
func (pol *Policy) remedy(p Peer, need Level) string {
	switch p.Origin {
	case Remote:
		return "it connected from beyond this machine, where nobody can be identified; use an ipc:// or 127.0.0.1 endpoint (or set [circus] insecure_remote_control = true to let anyone who can connect do everything)"
	case Unknown:
		return "the kernel could not say who it is"
	}
	if need == Read {
		return "add the user to [circus] read_users (or one of its groups to read_groups); control_users and control_groups allow every command"
	}
	return "only root, the arbiter's own user and [circus] control_users or control_groups may change anything; add the user or one of its groups there"
}

// Describe names a peer with its user name where one exists:
// "uid 65534 (nobody) pid 4411".
func Describe(p Peer) string {
	if p.Origin != Local {
		return p.String()
	}
	s := "uid " + strconv.Itoa(p.UID)
	if u, err := user.LookupId(strconv.Itoa(p.UID)); err == nil {
		s += " (" + u.Username + ")"
	}
	if p.PID > 0 {
		s += " pid " + strconv.Itoa(p.PID)
	}
	return s
}
