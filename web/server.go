package web

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/pubsub"
	"github.com/ringmaster-dev/ringmaster/stats"
)

//go:embed assets
var assets embed.FS

// Options are a console's collaborators and settings.
type Options struct {
	// Arbiter is what the console shows; required.
	Arbiter *arbiter.Arbiter
	// Bus is where its events come from; required.
	Bus *pubsub.Bus
	// Commands runs the page's commands: the same table as the ZeroMQ
	// control endpoint, so a click and a circusctl command behave alike.
	// Required.
	Commands control.OrderedHandler
	// Sampler measures cpu and memory; share the stats stream's so that
	// both see the same cpu baselines. nil: the console makes its own.
	Sampler *stats.Sampler
	// Auth is "USER:PASSWORD": every request then needs HTTP Basic
	// authentication with them. "" means none, which Serve allows only on
	// a loopback listener.
	Auth string
	// Hosts are Host header names accepted, besides loopback names and
	// addresses, when Auth is "": the configured httpd_host. Other names are
	// refused so that a DNS-rebinding page cannot reach the console.
	Hosts []string
	// Routes are other GET handlers by path, served behind the same
	// authentication and access check as the page: the operations
	// endpoints (/metrics, /healthz, /readyz).
	Routes map[string]http.Handler
	// Logger receives the console's log; nil discards it.
	Logger *slog.Logger
	// Interval is the time between stats samples while a page is open
	// (default 2 s).
	Interval time.Duration
	// Queue is how many messages a page may have waiting before it is
	// dropped as too slow (default 1024).
	Queue int
	// Version, Config and Endpoint describe the arbiter in the page's
	// header.
	Version, Config, Endpoint string
	// Identify tells who holds an HTTP connection (access.Identify);
	// without httpd_auth, that is who sends the page's commands. nil:
	// nobody is identified, and Check decides on an Unknown peer.
	Identify func(net.Conn) access.Peer
	// Check says whether a peer may run a command; the console is shown
	// to those who may run status. nil: everyone may see it, and the
	// command table alone decides on commands.
	Check func(p access.Peer, command string) error
}

// Server is the console: an http.Handler for the page, its assets and
// its WebSocket, and the hub that feeds the WebSockets.
type Server struct {
	opts     Options
	hub      *hub
	upgrader websocket.Upgrader
	files    http.Handler
	gate     *Gate

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the hub, handlers of open WebSockets, commands waiting
	srvMu  sync.Mutex
	srv    *http.Server
	closed bool
}

// New returns a console for opts.Arbiter and starts its hub. Close it.
func New(opts Options) (*Server, error) {
	if opts.Arbiter == nil || opts.Bus == nil || opts.Commands == nil {
		return nil, errors.New("web: Arbiter, Bus and Commands are required")
	}
	gate, err := NewGate(GateOptions{Auth: opts.Auth, Hosts: opts.Hosts, Identify: opts.Identify, Check: opts.Check})
	if err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Interval <= 0 {
		opts.Interval = 2 * time.Second
	}
	if opts.Queue <= 0 {
		opts.Queue = 1024
	}
	if opts.Sampler == nil {
		s, err := stats.NewSampler()
		if err != nil {
			return nil, fmt.Errorf("web: %w", err)
		}
		opts.Sampler = s
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:   opts,
		gate:   gate,
		files:  http.FileServerFS(sub),
		ctx:    ctx,
		cancel: cancel,
		// The default CheckOrigin refuses a page from another origin:
		// that, and no GET that acts, is what makes actions CSRF-safe.
		upgrader: websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 16384},
	}
	started := epoch(time.Now())
	if in, err := opts.Sampler.Process(stats.Process{Pid: os.Getpid()}, false); err == nil {
		// The process's own start, which an upgrade in place keeps (an
		// exec, the same process): the page's "up" goes on across it.
		started = in.CreateTime
	}
	info, _ := json.Marshal(map[string]any{
		"pid": os.Getpid(), "version": opts.Version, "started": started,
		"config": opts.Config, "endpoint": opts.Endpoint,
	})
	s.hub = &hub{
		a:        opts.Arbiter,
		sub:      opts.Bus.Subscribe(4096),
		sampler:  opts.Sampler,
		sockets:  stats.FromArbiter(opts.Arbiter),
		interval: opts.Interval,
		queue:    opts.Queue,
		log:      opts.Logger,
		arbiter:  info,
		stream:   newStreamID(),
		joinc:    make(chan join),
		flushc:   make(chan flush),
		leavec:   make(chan *client),
		polledc:  make(chan poll),
		dirtyc:   make(chan string, 256),
		done:     make(chan struct{}),
		watchers: map[string]json.RawMessage{},
		pages:    map[*client]struct{}{},
	}
	s.wg.Go(func() { s.hub.run(ctx) })
	return s, nil
}

// Serve answers HTTP on ln until Close. A listener beyond loopback is
// refused unless Auth is set. It returns nil after Close.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.gate.CheckListener(ln); err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           s,
		ConnContext:       withConnPeer,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelDebug),
	}
	s.srvMu.Lock()
	if s.closed {
		s.srvMu.Unlock()
		return nil
	}
	s.srv = srv
	s.srvMu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close disconnects every page, stops the hub and the HTTP server, and
// waits for all of it, including commands a page started (which are
// cancelled).
func (s *Server) Close() error {
	s.flush(time.Second)
	s.srvMu.Lock()
	s.closed = true
	srv := s.srv
	s.srvMu.Unlock()
	s.cancel()
	var err error
	if srv != nil {
		err = srv.Close()
	}
	s.hub.sub.Close()
	s.wg.Wait()
	return err
}

// flush waits, at most d, until the hub has broadcast every event
// published so far: the arbiter's last events (its workers' reaps, its
// stop) then reach the pages before they are disconnected.
func (s *Server) flush(d time.Duration) {
	f := flush{upto: s.opts.Bus.Seq(), done: make(chan struct{})}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case s.hub.flushc <- f:
	case <-s.hub.done:
		return
	case <-t.C:
		return
	}
	select {
	case <-f.done:
	case <-t.C:
	}
}

// ServeHTTP serves the page, its assets and the WebSocket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	peer, ok := s.gate.Admit(w, r)
	if !ok {
		return
	}
	switch {
	case r.URL.Path == "/ws":
		s.serveWS(w, r, peer)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		// Nothing but the WebSocket acts; no form, no GET link.
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	case s.opts.Routes[r.URL.Path] != nil:
		s.opts.Routes[r.URL.Path].ServeHTTP(w, r)
	case r.URL.Path == "/":
		s.files.ServeHTTP(w, r)
	case strings.HasPrefix(r.URL.Path, "/assets/") && r.URL.Path != "/assets/index.html":
		http.StripPrefix("/assets", s.files).ServeHTTP(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request, peer access.Peer) {
	q := r.URL.Query()
	since, _ := strconv.ParseUint(q.Get("since"), 10, 64)
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered (403 for a foreign Origin)
	}
	c := newClient(conn, s.opts.Queue)
	// Close waits for this handler: it outlives the HTTP server's own
	// bookkeeping once the connection is hijacked.
	if !s.track() {
		c.kick(websocket.CloseGoingAway, "the arbiter is shutting down")
		c.hangUp() // no writer yet to do it
		return
	}
	defer s.wg.Done()
	select {
	case s.hub.joinc <- join{c: c, stream: q.Get("stream"), since: since}:
	case <-s.hub.done:
		c.kick(websocket.CloseGoingAway, "the arbiter is shutting down")
		c.hangUp()
		return
	}
	var writer sync.WaitGroup
	writer.Go(c.write)
	c.read(s.ctx, peer, s.opts.Commands, &s.wg, s.hub.markDirty)
	c.kick(websocket.CloseNormalClosure, "")
	writer.Wait()
	select {
	case s.hub.leavec <- c:
	case <-s.hub.done:
	}
}

// track counts a handler in wg unless Close has begun (an Add racing with
// Close's Wait would be a misuse of the WaitGroup).
func (s *Server) track() bool {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}
