package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// KeyError places an error found after loading at the key's line.
func TestKeyError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "c.ini")
	ini := "[circus]\nloglevel = info\nendpoint = tcp://127.0.0.1:5555\n"
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key, want string
	}{
		{"key in the file", "endpoint", path + ":3: [circus] endpoint: address already in use"},
		{"key not in the file", "pubsub_endpoint", "[circus] pubsub_endpoint: address already in use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := cfg.KeyError("circus", tc.key, errors.New("address already in use"))
			if got := err.Error(); got != tc.want {
				t.Errorf("KeyError(circus, %s) = %q, want %q", tc.key, got, tc.want)
			}
		})
	}
}
