package pubsub

import (
	"bytes"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const systemPython = testproc.SystemPython

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func splitLines(b []byte) []string {
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}
