package cgroups

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// leafOutHelper is the "leafout" helper role: a supervisor alone in its v2
// cgroup makes a tree needing controller $CGROUPS_CTL, and so moves into a
// leaf; it hands the tree over and executes this test binary again, same
// pid, as "leafin". Each reports "key: value" lines.
func leafOutHelper() {
	h, err := Detect()
	if err != nil || h.Unified() == nil {
		fmt.Println("error: no v2:", err)
		return
	}
	tr, err := NewTree(&Host{Hierarchies: []*Hierarchy{h.Unified()}}, testPrefix, 1)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer tr.Close(time.Now().Add(5 * time.Second)) // reached only if the exec fails
	fmt.Println("enable:", tr.enableV2(tr.Tracker(), os.Getenv("CGROUPS_CTL")))
	st, err := tr.Handover()
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	b, _ := json.Marshal(st)
	// The new image must not join the service cgroup again: it lives in
	// its leaf.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "CGROUPS_JOIN=") || strings.HasPrefix(kv, "CGROUPS_HELPER=")
	})
	env = append(env, "CGROUPS_HELPER=leafin", "CGROUPS_STATE="+string(b), "CGROUPS_DIRS="+strings.Join(tr.Dirs(), " "))
	err = syscall.Exec("/proc/self/exe", os.Args, env)
	tr.HandoverBack()
	fmt.Println("error: exec:", err)
}

// leafInHelper is the "leafin" helper role: the new image adopts the tree
// and reports where it lives and what it holds.
func leafInHelper() {
	var st TreeState
	if err := json.Unmarshal([]byte(os.Getenv("CGROUPS_STATE")), &st); err != nil {
		fmt.Println("error:", err)
		return
	}
	h, err := Detect()
	if err != nil || h.Unified() == nil {
		fmt.Println("error: no v2:", err)
		return
	}
	tr, err := AdoptTree(&Host{Hierarchies: []*Hierarchy{h.Unified()}}, st)
	fmt.Println("adopt:", err)
	if err != nil {
		return
	}
	fmt.Println("dirs:", strings.Join(tr.Dirs(), " "))
	fmt.Println("moved:", tr.Moved())
	fmt.Println("cgroup:", v2Path(os.Getpid()))
	leafLock.Lock()
	leaf := leafLock.dir
	leafLock.Unlock()
	fmt.Println("leaf:", leaf)
	fmt.Println("leaflocked:", heldElsewhere(leaf))
	fmt.Println("close:", tr.Close(time.Now().Add(5*time.Second)))
}

// A supervisor that moved into a leaf to enable a controller keeps it
// across an in-place upgrade: the new image, which detects its own cgroup
// as the leaf, adopts the tree beside it, and the leaf's lock is still
// held, so that a sweep leaves it alone. Not parallel: it enables a
// controller in the root cgroup, as TestLeaveForControllers does.
func TestLeafAcrossExec(t *testing.T) {
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	v2 := h.Unified()
	var ctl string
	if v2 != nil {
		for _, c := range []string{"hugetlb", "io", "memory", "pids"} {
			if v2.Has(c) {
				ctl = c
				break
			}
		}
	}
	if v2 == nil || v2.Path != "/" || v2.ReadOnly || ctl == "" {
		msg := fmt.Sprintf("needs to run in a writable v2 root cgroup offering a controller; host %s", h)
		if os.Getenv("CI") == "true" && os.Getuid() == 0 {
			t.Fatal(msg + " (CI runs as root on such a host)")
		}
		t.Skip(msg)
	}
	if !slices.Contains(v2.Enabled, ctl) {
		if err := writeFile(path.Join(v2.Dir, "cgroup.subtree_control"), "+"+ctl); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			deadline := time.Now().Add(5 * time.Second)
			for writeFile(path.Join(v2.Dir, "cgroup.subtree_control"), "-"+ctl) != nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	svc := path.Join(v2.Dir, fmt.Sprintf("%s-svc-%d-exec", testPrefix, os.Getpid()))
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for err := removeAll(svc); err != nil; err = removeAll(svc) {
			if time.Now().After(deadline) {
				t.Errorf("remove %s: %v", svc, err)
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "CGROUPS_HELPER=leafout", "CGROUPS_JOIN="+path.Join(svc, "cgroup.procs"), "CGROUPS_CTL="+ctl)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, ": ")
		got[k] = v
	}
	t.Logf("helper reported %q", got)
	leaf := path.Join(svc, TreeName(testPrefix, cmd.Process.Pid, 1)+leafSuffix)
	tree := path.Join(svc, TreeName(testPrefix, cmd.Process.Pid, 1))
	for _, c := range []struct{ key, want string }{
		{"error", ""},
		{"enable", "<nil>"},
		{"adopt", "<nil>"},
		{"dirs", tree},
		{"cgroup", strings.TrimPrefix(leaf, v2.Mount)},
		{"leaf", leaf},
		{"leaflocked", "true"},
		{"close", "<nil>"},
	} {
		if got[c.key] != c.want {
			t.Errorf("%s: %q, want %q", c.key, got[c.key], c.want)
		}
	}
	if !strings.Contains(got["moved"], leaf) {
		t.Errorf("moved: %q, want the move into %s said after the upgrade too", got["moved"], leaf)
	}
}
