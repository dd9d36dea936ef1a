package access

import (
	"errors"
	"strings"
	"testing"
)

// Who may do what, by every rule of the policy. daemon (uid 1, primary
// group 1) stands for a user known to the user database.
func TestPolicyLevel(t *testing.T) {
	const daemon, daemonGroup = 1, 1
	// The arbiter's own uid, as if it ran as some service user.
	const self = 4321
	local := func(uid, gid int) Peer { return Peer{Origin: Local, UID: uid, GID: gid} }
	for _, tc := range []struct {
		name string
		set  Settings
		peer Peer
		want Level
	}{
		{"root", Settings{}, local(0, 0), Control},
		{"the arbiter's own user", Settings{}, local(self, -1), Control},
		{"anyone else, by default", Settings{}, local(nobody, nobody), None},
		{"a control user", Settings{Control: Rule{Users: []int{nobody}}}, local(nobody, nobody), Control},
		{"a read user", Settings{Read: Rule{Users: []int{nobody}}}, local(nobody, nobody), Read},
		{"both: the higher", Settings{Control: Rule{Users: []int{nobody}}, Read: Rule{Users: []int{nobody}}}, local(nobody, nobody), Control},
		{"read for anyone", Settings{Read: Rule{Anyone: true}}, local(nobody, nobody), Read},
		{"a group by the kernel's gid", Settings{Control: Rule{Groups: []int{4242}}}, local(nobody, 4242), Control},
		// tcp gives no gid: the user database's primary group counts.
		{"a group by the user database", Settings{Read: Rule{Groups: []int{daemonGroup}}}, local(daemon, -1), Read},
		{"another group", Settings{Control: Rule{Groups: []int{4242}}}, local(daemon, -1), None},
		{"remote, by default", Settings{}, Peer{Origin: Remote, Addr: "10.0.0.7:4410"}, None},
		{"remote, insecure_remote_control", Settings{InsecureRemote: true}, Peer{Origin: Remote}, Control},
		{"unknown, even with anyone", Settings{Control: Rule{Anyone: true}, InsecureRemote: true}, Peer{}, None},
		{"a plugin", Settings{}, Peer{Origin: Internal, Name: "plugin watchdog"}, Control},
		{"the console's user", Settings{}, Peer{Origin: Authenticated, Name: "admin"}, Control},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := New(tc.set)
			pol.self = self
			if got := pol.Level(tc.peer); got != tc.want {
				t.Errorf("Level(%+v) = %v, want %v", tc.peer, got, tc.want)
			}
		})
	}
}

// A refusal names the peer and the setting that would allow it.
func TestPolicyCheck(t *testing.T) {
	pol := New(Settings{Read: Rule{Users: []int{nobody}}})
	p := Peer{Origin: Local, UID: nobody, GID: nobody, PID: 4411}
	if err := pol.Check(p, "STATUS"); err != nil {
		t.Errorf("a read user's status: %v", err)
	}
	err := pol.Check(p, "incr")
	var d *Denied
	if !errors.As(err, &d) || d.Need != Control {
		t.Fatalf("a read user's incr: %v, want a *Denied needing control", err)
	}
	for _, want := range []string{"uid 65534 (nobody) pid 4411", `"incr"`, "control_users"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q lacks %q", err, want)
		}
	}
	// A command nobody has classified needs control.
	if err := pol.Check(p, "frobnicate"); err == nil {
		t.Error("an unknown command passed with read rights")
	}
	err = New(Settings{}).Check(p, "status")
	if err == nil || !strings.Contains(err.Error(), "read_users") {
		t.Errorf("status by nobody: %v, want a refusal naming read_users", err)
	}
	err = New(Settings{}).Check(Peer{Origin: Remote, Addr: "10.0.0.7:4410"}, "status")
	if err == nil || !strings.Contains(err.Error(), "insecure_remote_control") || !strings.Contains(err.Error(), "10.0.0.7:4410") {
		t.Errorf("status from a remote peer: %v, want a refusal naming the address and insecure_remote_control", err)
	}
}
