package main

import (
	"strings"
	"testing"
)

// --help ends in where the documentation is, and fits a terminal.
func TestHelpDocsAndWidth(t *testing.T) {
	t.Parallel()
	r := runCtl(t, nil, "", "--help")
	if r.code != exitOK || !strings.Contains(r.stdout, "\nDocumentation: "+docsURL+"\n") {
		t.Errorf("circusctl --help = exit %d, %q; want exit 0 and the documentation's address", r.code, r.stdout)
	}
	for _, line := range strings.Split(r.stdout, "\n") {
		if len(line) > 80 {
			t.Errorf("circusctl --help line of %d columns, want at most 80: %q", len(line), line)
		}
	}
}
