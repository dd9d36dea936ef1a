package testproc

import (
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago, for
// tests that must write a fixed port into a config. It picks below the
// kernel's ephemeral range (32768 and up by default), where no outgoing
// connection of a parallel test can take it between this check and the
// arbiter's bind, as a port 0 listener's would.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		port := 20000 + rand.N(12000)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			l.Close()
			return port
		}
	}
	t.Fatal("no free port found in 20000-31999")
	return 0
}
