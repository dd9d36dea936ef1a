package main

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// circusctl is a client: it must never link the arbiter (DESIGN.md).
func TestNoArbiterDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/ringmaster-dev/ringmaster/arbiter") {
			t.Errorf("circusctl depends on %s", dep)
		}
	}
}

// top draws every worker of a watcher with its cpu, memory and age, the
// sockets, and drops a worker once it has been silent for the timeout.
func TestTopBoard(t *testing.T) {
	b := &board{procs: map[string]map[int]sample{}, sockets: map[string]float64{}}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	b.add("stat.web srv.101", []byte(`{"cpu": 12.5, "mem": 0.5, "age": 65.0, "pid": 101}`), now)
	b.add("stat.web srv.102", []byte(`{"cpu": 40.0, "mem": 1.5, "age": 10.0, "pid": 102}`), now.Add(-5*time.Second))
	b.add("stat.web srv", []byte(`{"pid": [101, 102], "cpu": 26.2, "mem": 2.0, "age": 65.0}`), now)
	b.add("stat.sockets.3", []byte(`{"fd": 3, "reads": 2, "address": "127.0.0.1:8080"}`), now)
	b.add("stat.web srv.103", []byte(`not json`), now)
	var out strings.Builder
	b.draw(&out, "tcp://127.0.0.1:5557", 3*time.Second, now)
	got := out.String()
	for _, want := range []string{"web srv", "101", "12.5", "1m5s", "127.0.0.1:8080", "reads 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("top output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "102") || strings.Contains(got, "103") {
		t.Errorf("top output shows a worker silent for longer than the timeout, or a malformed one:\n%s", got)
	}
}
