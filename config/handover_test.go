package config

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
)

// Every configuration of Circus's own tests, once loaded, is rebuilt
// identically from its sources, and each of its watchers from its spec,
// after a trip through JSON: what an upgrade in place carries is enough.
func TestHandoverRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/circus/*.ini")
	if err != nil || len(files) < 40 {
		t.Fatalf("testdata: %v, %d files", err, len(files))
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			continue // refused configs are not run, so never handed over
		}
		b, err := json.Marshal(c.Sources)
		if err != nil {
			t.Fatal(err)
		}
		var src []Source
		if err := json.Unmarshal(b, &src); err != nil {
			t.Fatal(err)
		}
		c2, err := LoadSources(src)
		if err != nil {
			t.Errorf("%s: LoadSources: %v", f, err)
			continue
		}
		// Warnings about includes that matched nothing are the disk's,
		// found by Load alone.
		c2.Warnings = c.Warnings
		if !reflect.DeepEqual(c, c2) {
			t.Errorf("%s: rebuilt from its sources, the config differs", f)
		}
		for _, w := range c.Watchers {
			b, err := json.Marshal(w.Spec())
			if err != nil {
				t.Fatal(err)
			}
			var s WatcherSpec
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			w2, err := FromSpec(s)
			if err != nil {
				t.Errorf("%s: watcher %s: FromSpec: %v", f, w.Name, err)
				continue
			}
			a, b2 := *w, *w2
			if !reflect.DeepEqual(a, b2) {
				t.Errorf("%s: watcher %s rebuilt from its spec differs:\n%+v\n%+v", f, w.Name, a, b2)
			}
		}
	}
}

// A source list that is empty is refused, not a panic.
func TestLoadSourcesEmpty(t *testing.T) {
	if _, err := LoadSources(nil); err == nil {
		t.Fatal("LoadSources(nil) succeeded")
	}
}

// The [circus] section in effect crosses the exec as JSON, unchanged.
func TestHandoverCircusJSON(t *testing.T) {
	files, _ := filepath.Glob("testdata/circus/*.ini")
	files = append(files, "testdata/httpd_auth_ok.ini")
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			continue
		}
		b, err := json.Marshal(c.Circus)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var got Circus
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !reflect.DeepEqual(c.Circus, got) {
			t.Errorf("%s: [circus] after JSON:\n%+v\nwant\n%+v", f, got, c.Circus)
		}
	}
}
