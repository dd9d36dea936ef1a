package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/config"
)

// GateOptions are the console's rules of entry (see the package's Security
// section); [Options] holds the same fields.
type GateOptions struct {
	// Auth is "USER:PASSWORD" for HTTP Basic authentication; "" means
	// none, and then only loopback listeners and Host names of this
	// machine (or Hosts) are served.
	Auth  string
	Hosts []string
	// Identify and Check decide, without Auth, who may read: those Check
	// lets run status.
	Identify func(net.Conn) access.Peer
	Check    func(p access.Peer, command string) error
}

// Gate is the console's door, usable in front of other handlers too: the
// operations endpoints (/metrics, /healthz, /readyz) on a listener of
// their own ask exactly what the console asks. It is safe for concurrent
// use.
type Gate struct {
	o       GateOptions
	authSum [32]byte // sha256 of "USER:PASSWORD", compared in constant time
}

// NewGate returns the gate of o; an Auth that is not USER:PASSWORD is an
// error.
func NewGate(o GateOptions) (*Gate, error) {
	g := &Gate{o: o}
	if o.Auth != "" {
		if u, p, ok := strings.Cut(o.Auth, ":"); !ok || u == "" || p == "" {
			return nil, errors.New("web: Auth must be USER:PASSWORD")
		}
		g.authSum = sha256.Sum256([]byte(o.Auth))
	}
	return g, nil
}

// CheckListener refuses a listener beyond loopback without Auth.
func (g *Gate) CheckListener(ln net.Listener) error {
	if g.o.Auth == "" && !isLoopbackAddr(ln.Addr()) {
		return fmt.Errorf("web: refusing to serve on %s without authentication", ln.Addr())
	}
	return nil
}

// Server returns an http.Server for h behind the gate: each request must
// pass [Gate.Admit], and only GET and HEAD are served, since nothing
// behind a plain Gate acts. Serve it on a listener [Gate.CheckListener]
// accepts.
func (g *Gate) Server(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Content-Type-Options", "nosniff")
			if _, ok := g.Admit(w, r); !ok {
				return
			}
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			h.ServeHTTP(w, r)
		}),
		ConnContext:       withConnPeer,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Admit lets through a request that is authenticated (or, without Auth,
// addressed to this machine) and whose sender may read; it answers the
// others (401, 421 or 403, with why) and returns false. The http.Server
// must have the gate's ConnContext (see [Gate.Server]) for the sender to be
// identified.
func (g *Gate) Admit(w http.ResponseWriter, r *http.Request) (access.Peer, bool) {
	if !g.authorized(w, r) {
		return access.Peer{}, false
	}
	return g.permitted(w, r)
}

// authorized checks the credentials, or without them that the request is
// addressed to this machine by a name it expects. It answers refusals.
func (g *Gate) authorized(w http.ResponseWriter, r *http.Request) bool {
	if g.o.Auth != "" {
		u, p, ok := r.BasicAuth()
		sum := sha256.Sum256([]byte(u + ":" + p))
		if !ok || subtle.ConstantTimeCompare(sum[:], g.authSum[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="Ringmaster", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return false
		}
		return true
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if config.IsLoopbackHost(host) {
		return true
	}
	for _, ok := range g.o.Hosts {
		if strings.EqualFold(host, ok) {
			return true
		}
	}
	http.Error(w, "this console answers to localhost only (Host "+strconv.Quote(r.Host)+")", http.StatusMisdirectedRequest)
	return false
}

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
// what Identify says of its connection (Unknown without Identify).
func (g *Gate) peerOf(r *http.Request) access.Peer {
	if g.o.Auth != "" {
		u, _, _ := r.BasicAuth() // authorized checked it
		return access.Peer{Origin: access.Authenticated, Name: u, Addr: r.RemoteAddr, Via: "console"}
	}
	cp, _ := r.Context().Value(connPeerKey{}).(*connPeer)
	if cp == nil || g.o.Identify == nil {
		return access.Peer{Addr: r.RemoteAddr, Via: "console"}
	}
	cp.once.Do(func() { cp.peer = g.o.Identify(cp.conn) })
	p := cp.peer
	p.Via = "console"
	return p
}

// permitted answers a request whose sender may not even read with 403
// and the reason; without Check everyone may.
func (g *Gate) permitted(w http.ResponseWriter, r *http.Request) (access.Peer, bool) {
	p := g.peerOf(r)
	if g.o.Check == nil {
		return p, true
	}
	// The page shows what status, options and tail show: it needs what
	// they need; so do the metrics and probes.
	if err := g.o.Check(p, "status"); err != nil {
		http.Error(w, err.Error(), http.StatusForbidden)
		return p, false
	}
	return p, true
}

func isLoopbackAddr(a net.Addr) bool {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.IsLoopback()
	}
	return a.Network() == "unix"
}
