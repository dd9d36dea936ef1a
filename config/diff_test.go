package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCompare(t *testing.T) {
	load := func(name string) *Config {
		t.Helper()
		cfg, err := Load("testdata/circus/" + name)
		if err != nil {
			t.Fatalf("Load(%s): %v", name, err)
		}
		return cfg
	}
	base := load("reload_base.ini")
	tests := []struct {
		file string
		want Diff
	}{
		{"reload_base.ini", Diff{}},
		{"reload_addwatchers.ini", Diff{WatchersAdded: []string{"test3"}}},
		{"reload_delwatchers.ini", Diff{WatchersRemoved: []string{"test2"}}},
		{"reload_changewatchers.ini", Diff{WatchersChanged: []string{"test2"}}},
		{"reload_numprocesses.ini", Diff{WatchersChanged: []string{"test1", "test2"}}},
		{"reload_addsockets.ini", Diff{SocketsAdded: []string{"mysocket2"}}},
		{"reload_delsockets.ini", Diff{SocketsRemoved: []string{"mysocket"}}},
		{"reload_changesockets.ini", Diff{SocketsChanged: []string{"mysocket"}}},
		{"reload_changearbiter.ini", Diff{CircusChanged: true}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := Compare(base, load(tt.file))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Compare(reload_base.ini, %s) mismatch (-want +got):\n%s", tt.file, diff)
			}
			if got.Empty() != (tt.file == "reload_base.ini") {
				t.Errorf("Compare(reload_base.ini, %s).Empty() = %v", tt.file, got.Empty())
			}
		})
	}
}
