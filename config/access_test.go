package config

import (
	"slices"
	"strings"
	"testing"
)

func TestAccess(t *testing.T) {
	c, err := Parse("a.ini", []byte(`[circus]
endpoint = ipc:///run/rm.sock
endpoint_owner = daemon
control_users = root, 4000
control_groups = nogroup
read_users = *
read_groups = 60 staff
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Circus.Access
	if !slices.Equal(a.Control.Users, []int{0, 4000, 1}) || !slices.Equal(a.Control.Groups, []int{65534}) {
		t.Errorf("control = %+v, want users root, 4000, daemon (endpoint_owner) and group nogroup", a.Control)
	}
	if !a.Read.Anyone || !slices.Equal(a.Read.Groups, []int{60, 50}) {
		t.Errorf("read = %+v, want anyone and groups 60, staff", a.Read)
	}
	if a.InsecureRemote || a.Control.Anyone {
		t.Errorf("access = %+v: nothing else was asked for", a)
	}
}

func TestAccessErrors(t *testing.T) {
	for _, tc := range []struct{ ini, want string }{
		{"control_users = nosuchuser", `a.ini:2: [circus] control_users: unknown user "nosuchuser"`},
		{"read_groups = nosuchgroup", `a.ini:2: [circus] read_groups: unknown group "nosuchgroup"`},
		{"endpoint_owner = nosuchuser", `a.ini:2: [circus] endpoint_owner: unknown user "nosuchuser"`},
		{"insecure_remote_control = maybe", "a.ini:2: [circus] insecure_remote_control:"},
		{"endpoint = tcp://0.0.0.0:5555", "a.ini:2: [circus] endpoint: tcp://0.0.0.0:5555 listens beyond this machine"},
		{"endpoint = tcp://*:5555", "set insecure_remote_control = true"},
	} {
		_, err := Parse("a.ini", []byte("[circus]\n"+tc.ini+"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v, want %q", tc.ini, err, tc.want)
		}
	}
	// Asked for in so many words, a wide endpoint loads.
	c, err := Parse("a.ini", []byte("[circus]\nendpoint = tcp://0.0.0.0:5555\ninsecure_remote_control = true\n"))
	if err != nil || !c.Circus.Access.InsecureRemote {
		t.Errorf("insecure_remote_control = true: %v, %+v", err, c.Circus.Access)
	}
}
