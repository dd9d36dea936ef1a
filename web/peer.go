package web

import (
	"context"
	"net"
	"net/http"
	"sync"

	"github.com/ringmaster-dev/ringmaster/access"
)

// connPeer is who holds one HTTP connection, asked for once, on the
// connection's first request: a browser keeps its connection for the page
// and its WebSocket, so that is one sock_diag lookup per page, and none in
// http.Server's accept loop.
type connPeer struct {
	once sync.Once
	conn net.Conn
	peer access.Peer
}

type connPeerKey struct{}

// withConnPeer is the http.Server's ConnContext: it notes the connection
// for peerOf.
func withConnPeer(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connPeerKey{}, &connPeer{conn: c})
}

// peerOf returns who sent r: the httpd_auth user once authenticated, else
// what Options.Identify says of its connection (Unknown without Identify).
func (s *Server) peerOf(r *http.Request) access.Peer {
	if s.opts.Auth != "" {
		u, _, _ := r.BasicAuth() // authorized checked it
		return access.Peer{Origin: access.Authenticated, Name: u, Addr: r.RemoteAddr, Via: "console"}
	}
	cp, _ := r.Context().Value(connPeerKey{}).(*connPeer)
	if cp == nil || s.opts.Identify == nil {
		return access.Peer{Addr: r.RemoteAddr, Via: "console"}
	}
	cp.once.Do(func() { cp.peer = s.opts.Identify(cp.conn) })
	p := cp.peer
	p.Via = "console"
	return p
}

// permitted answers a request whose sender may not even read with 403
// and the reason; without Options.Check everyone may.
func (s *Server) permitted(w http.ResponseWriter, r *http.Request) (access.Peer, bool) {
	p := s.peerOf(r)
	if s.opts.Check == nil {
		return p, true
	}
	// The page shows what status, options and tail show: it needs what
	// they need.
	if err := s.opts.Check(p, "status"); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return p, false
	}
	return p, true
}
