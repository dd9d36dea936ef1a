package testproc

import (
	"fmt"
	"io"
	"net"
	"time"
)

// AskSerial sends one request to a `testworker serial` worker at addr and
// returns the pid that answered.
func AskSerial(network, addr string) (int, error) {
	c, err := net.DialTimeout(network, addr, 10*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c, "x\n"); err != nil {
		return 0, err
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return 0, err
	}
	var pid int
	if _, err := fmt.Sscanf(string(b), "pid %d", &pid); err != nil {
		return 0, fmt.Errorf("answer %q: %w", b, err)
	}
	return pid, nil
}
