package suggest

import (
	"strconv"
	"testing"
)

func TestClosest(t *testing.T) {
	t.Parallel()
	known := []string{"cmd", "numprocesses", "graceful_timeout", "web", "webapp"}
	tests := []struct {
		name, word, want string
	}{
		{"one letter missing", "numprocess", "numprocesses"},
		{"one letter more", "gracefull_timeout", "graceful_timeout"},
		{"transposition of a short name is too far", "cdm", ""},
		{"far from everything", "service_url", ""},
		{"known names are no typos", "cmd", ""},
		{"nearest wins", "webap", "webapp"},
		{"empty word", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := Closest(tt.word, known)
			if got != tt.want || ok != (tt.want != "") {
				t.Errorf("Closest(%q) = %q, %v, want %q", tt.word, got, ok, tt.want)
			}
		})
	}
}

func TestHint(t *testing.T) {
	t.Parallel()
	if got, want := Hint("satus", []string{"status", "stats"}, strconv.Quote), `; did you mean "status"?`; got != want {
		t.Errorf("Hint(satus) = %q, want %q", got, want)
	}
	if got := Hint("xyz", []string{"status"}, strconv.Quote); got != "" {
		t.Errorf("Hint(xyz) = %q, want none", got)
	}
}

func TestEditDistance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"", "abc", 3}, {"kitten", "sitting", 3}, {"status", "stauts", 2},
	}
	for _, tt := range tests {
		if got := editDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
