package config

import "testing"

// TestWithSubstitutesOnce: With re-reads a watcher's options, already
// substituted at load, without substituting them again, while new options
// are substituted once. Found by FuzzLoad: a variable whose value holds
// $(circus.env.X) changed an unrelated key's value on every set.
func TestWithSubstitutesOnce(t *testing.T) {
	t.Setenv("RINGMASTER_INNER", "inner")
	t.Setenv("RINGMASTER_OUTER", "$(circus.env.RINGMASTER_INNER)")
	c, err := Parse("w.ini", []byte("[watcher:w]\ncmd = run $(circus.env.RINGMASTER_OUTER)\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := c.Watchers[0]
	if want := "run $(circus.env.RINGMASTER_INNER)"; w.Cmd != want {
		t.Fatalf("loaded cmd = %q, want %q", w.Cmd, want)
	}
	w2, err := w.With(map[string]string{"args": "$(circus.env.RINGMASTER_OUTER)"})
	if err != nil {
		t.Fatal(err)
	}
	if w2.Cmd != w.Cmd {
		t.Errorf("With(args).Cmd = %q, want it unchanged: %q", w2.Cmd, w.Cmd)
	}
	if want := "$(circus.env.RINGMASTER_INNER)"; w2.Args != want || w2.Options["args"] != want {
		t.Errorf("With(args).Args = %q, Options[args] = %q, want %q (substituted once)", w2.Args, w2.Options["args"], want)
	}
}
