package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
	"time"
)

// leafHelper is the "leaf" helper role: a supervisor alone in (or sharing)
// the v2 cgroup it was started in makes a tree that needs controller
// $CGROUPS_CTL, and reports what happened, one "key: value" line each.
func leafHelper() {
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
	defer tr.Close(time.Now().Add(5 * time.Second))
	fmt.Println("enable:", tr.enableV2(tr.Tracker(), os.Getenv("CGROUPS_CTL")))
	fmt.Println("moved:", tr.Moved())
	if tr.leaf != "" {
		// Another open file of the leaf's, as a sweeper would take.
		fmt.Println("leaflocked:", heldElsewhere(tr.leaf))
	}
	fmt.Println("cgroup:", v2Path(os.Getpid()))
	sub, _ := os.ReadFile(path.Join(tr.Dirs()[0], "cgroup.subtree_control"))
	fmt.Println("tree:", strings.TrimSpace(string(sub)))

	// A process of a group, evacuated, goes where this process lives.
	g := tr.Group("w")
	if _, err := g.Setup(Limits{}); err != nil {
		fmt.Println("error:", err)
		return
	}
	c := exec.Command("sleep", "300")
	if err := c.Start(); err != nil {
		fmt.Println("error:", err)
		return
	}
	defer func() { c.Process.Kill(); c.Wait() }()
	if err := os.WriteFile(path.Join(g.Dir(tr.Tracker()), "cgroup.procs"), []byte(fmt.Sprint(c.Process.Pid)), 0); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("evacuate:", g.Evacuate())
	fmt.Println("evacuated:", v2Path(c.Process.Pid))

	// A second tree of this process, from the host read before the move,
	// is made beside the leaf too, and evacuates to it.
	tr2, err := NewTree(&Host{Hierarchies: []*Hierarchy{h.Unified()}}, testPrefix, 2)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer tr2.Close(time.Now().Add(5 * time.Second))
	fmt.Println("enable2:", tr2.enableV2(tr2.Tracker(), os.Getenv("CGROUPS_CTL")))
	g2 := tr2.Group("w")
	if _, err := g2.Setup(Limits{}); err != nil {
		fmt.Println("error:", err)
		return
	}
	if err := os.WriteFile(path.Join(g2.Dir(tr2.Tracker()), "cgroup.procs"), []byte(fmt.Sprint(c.Process.Pid)), 0); err != nil {
		fmt.Println("error:", err)
		return
	}
	fmt.Println("evacuate2:", g2.Evacuate())
	fmt.Println("evacuated2:", v2Path(c.Process.Pid))
}

// v2Path is pid's cgroup in the unified hierarchy.
func v2Path(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, l := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			return p
		}
	}
	return ""
}

// A supervisor alone in a non-root v2 cgroup (a systemd service with
// Delegate=yes, a container's init) moves itself into a leaf so that the
// controllers its limits need can be enabled for its tree; one that shares
// its cgroup with other processes leaves it alone and says why. The
// controller used is one this host offers in v2 (on this machine's hybrid
// layout only hugetlb; the kernel's rule is the same for all of them).
func TestLeaveForControllers(t *testing.T) {
	t.Parallel()
	h, err := Detect()
	if err != nil {
		t.Fatal(err)
	}
	v2 := h.Unified()
	ci := os.Getenv("CI") == "true" && os.Getuid() == 0
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
		if ci {
			t.Fatal(msg + " (CI runs as root on such a host)")
		}
		t.Skip(msg)
	}
	if !slices.Contains(v2.Enabled, ctl) {
		if err := writeFile(path.Join(v2.Dir, "cgroup.subtree_control"), "+"+ctl); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// Refused while a removed cgroup below is still dying.
			deadline := time.Now().Add(5 * time.Second)
			for writeFile(path.Join(v2.Dir, "cgroup.subtree_control"), "-"+ctl) != nil && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "alone", true: "shared"}[shared], func(t *testing.T) {
			// The cgroup a service manager gives the supervisor.
			svc := path.Join(v2.Dir, fmt.Sprintf("%s-svc-%d-%v", testPrefix, os.Getpid(), shared))
			if err := os.Mkdir(svc, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				deadline := time.Now().Add(5 * time.Second)
				for {
					err := removeAll(svc)
					if err == nil || time.Now().After(deadline) {
						if err != nil {
							t.Errorf("remove %s: %v", svc, err)
						}
						return
					}
					time.Sleep(20 * time.Millisecond)
				}
			})
			if shared {
				other := exec.Command("sleep", "300")
				if err := other.Start(); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { other.Process.Kill(); other.Wait() })
				if err := writeFile(path.Join(svc, "cgroup.procs"), fmt.Sprint(other.Process.Pid)); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(os.Args[0])
			cmd.Env = append(os.Environ(), "CGROUPS_HELPER=leaf", "CGROUPS_JOIN="+path.Join(svc, "cgroup.procs"), "CGROUPS_CTL="+ctl)
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
			if got["error"] != "" {
				t.Fatalf("helper: %s", got["error"])
			}
			rel := strings.TrimPrefix(svc, v2.Mount)
			leaf := path.Join(rel, TreeName(testPrefix, cmd.Process.Pid, 1)+leafSuffix)
			svcSub, _ := os.ReadFile(path.Join(svc, "cgroup.subtree_control"))
			if !shared {
				if got["enable"] != "<nil>" || got["cgroup"] != leaf || !strings.Contains(got["moved"], leaf) {
					t.Errorf("alone: enable %s, cgroup %s, moved %q; want the controller enabled after a move into %s", got["enable"], got["cgroup"], got["moved"], leaf)
				}
				if !slices.Contains(strings.Fields(string(svcSub)), ctl) || got["tree"] != ctl {
					t.Errorf("%s enabled in the service cgroup: %q, in the tree: %q; want %s in both", ctl, svcSub, got["tree"], ctl)
				}
				if got["leaflocked"] != "true" {
					t.Errorf("alone: leaf locked = %q, want true: a sweep beside it must leave the leaf of a live supervisor alone", got["leaflocked"])
				}
				if got["evacuate"] != "<nil>" || got["evacuated"] != leaf {
					t.Errorf("evacuated to %s (%s), want the supervisor's leaf %s", got["evacuated"], got["evacuate"], leaf)
				}
				if got["enable2"] != "<nil>" || got["evacuate2"] != "<nil>" || got["evacuated2"] != leaf {
					t.Errorf("a second tree: enable %s, evacuated to %s (%s); want the controller enabled and the leaf %s", got["enable2"], got["evacuated2"], got["evacuate2"], leaf)
				}
				return
			}
			if !strings.Contains(got["enable"], "holds processes other than this one") || got["moved"] != "" || got["cgroup"] != rel {
				t.Errorf("shared: enable %q, moved %q, cgroup %s; want a refusal naming the other processes, and the supervisor left in %s", got["enable"], got["moved"], got["cgroup"], rel)
			}
			if _, err := os.Stat(path.Join(v2.Mount, leaf)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("shared: a leaf %s was made (%v)", leaf, err)
			}
		})
	}
}
