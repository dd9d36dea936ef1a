package access

import (
	"net"
	"path/filepath"
	"testing"
)

// BenchmarkIdentify is the cost of telling who connected, once per
// connection: one sock_diag lookup on tcp, one getsockopt on a unix socket.
func BenchmarkIdentify(b *testing.B) {
	for _, tc := range []struct{ name, network, addr string }{
		{"tcp", "tcp4", "127.0.0.1:0"},
		{"unix", "unix", ""},
	} {
		b.Run(tc.name, func(b *testing.B) {
			addr := tc.addr
			if addr == "" {
				addr = filepath.Join(b.TempDir(), "s")
			}
			ln, err := net.Listen(tc.network, addr)
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			cc, err := net.Dial(tc.network, ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer cc.Close()
			sc, err := ln.Accept()
			if err != nil {
				b.Fatal(err)
			}
			defer sc.Close()
			for b.Loop() {
				if p := Identify(sc); p.Origin != Local {
					b.Fatalf("Identify = %+v", p)
				}
			}
		})
	}
}
