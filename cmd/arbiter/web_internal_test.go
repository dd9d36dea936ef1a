package main

import (
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// After an upgrade in place, the console's and the metrics' listeners are
// those the image before handed over under "http " + host:port: a
// connection made before the new image listened is accepted, none is
// refused. Not parallel: the inherited table is the process's.
func TestListenHTTPInherited(t *testing.T) {
	web, ops := testproc.FreePort(t), testproc.FreePort(t)
	cfg, err := config.Parse("up.ini", []byte("[circus]\nhttpd = true\nhttpd_host = 127.0.0.1\nhttpd_port = "+
		strconv.Itoa(web)+"\nmetrics = true\nmetrics_host = 127.0.0.1\nmetrics_port = "+strconv.Itoa(ops)+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]int{}
	conns := map[string]net.Conn{}
	for name, port := range map[string]int{"web": web, "ops": ops} {
		addr := "127.0.0.1:" + strconv.Itoa(port)
		fds["http "+addr], _ = testproc.HandedOver(t, "http "+addr, "tcp", addr)
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns[name] = c
	}
	handover.Inherit(fds)
	defer handover.Inherit(nil)

	for name, listen := range map[string]func(*config.Config) (net.Listener, error){"web": listenWeb, "ops": listenOps} {
		ln, err := listen(cfg)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer ln.Close()
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("%s: the connection made before the hand-over: %v", name, err)
		}
		if c.RemoteAddr().String() != conns[name].LocalAddr().String() {
			t.Errorf("%s: accepted %s, want %s", name, c.RemoteAddr(), conns[name].LocalAddr())
		}
		c.Close()
	}
	if u := handover.Unclaimed(); len(u) != 0 {
		t.Errorf("Unclaimed() = %v, want both listeners taken", u)
	}
}
