package web_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/ringmaster-dev/ringmaster/access"
	"github.com/ringmaster-dev/ringmaster/web"
)

// fetch sends method path to url with Host host and, if user is set,
// Basic credentials; it returns the status and body.
func fetch(t *testing.T, method, url, host, user, pass string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metrics here") })

// The console serves Routes behind its own authentication.
func TestConsoleRoutes(t *testing.T) {
	e := start(t, twoSleepers, web.Options{Auth: "ops:s3cret", Routes: map[string]http.Handler{"/metrics": okHandler}})
	for _, c := range []struct {
		name, method, user, pass string
		want                     int
		body                     string
	}{
		{"no credentials", "GET", "", "", 401, "authentication required"},
		{"wrong password", "GET", "ops", "nope", 401, "authentication required"},
		{"credentials", "GET", "ops", "s3cret", 200, "metrics here"},
		{"POST", "POST", "ops", "s3cret", 405, "method not allowed"},
	} {
		if code, body := fetch(t, c.method, e.url+"/metrics", "", c.user, c.pass); code != c.want || !strings.Contains(body, c.body) {
			t.Errorf("%s: %s /metrics = %d %q, want %d %q", c.name, c.method, code, body, c.want, c.body)
		}
	}
}

// A Gate in front of another handler asks what the console asks: without
// Auth, a loopback listener, a Host naming this machine and a reader;
// with Auth, the credentials.
func TestGate(t *testing.T) {
	t.Parallel()
	if _, err := web.NewGate(web.GateOptions{Auth: "nocolon"}); err == nil {
		t.Error("NewGate with Auth nocolon: no error")
	}
	refuse := errors.New("uid 65534 may not run status")
	readers := func(p access.Peer, cmd string) error {
		if p.Name == "reader" || p.Origin == access.Authenticated {
			return nil
		}
		return refuse
	}
	serve := func(t *testing.T, o web.GateOptions, addr string) string {
		t.Helper()
		g, err := web.NewGate(o)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.CheckListener(ln); err != nil {
			ln.Close()
			t.Fatal(err)
		}
		srv := g.Server(okHandler, slog.New(slog.DiscardHandler))
		done := make(chan struct{})
		go func() { srv.Serve(ln); close(done) }()
		t.Cleanup(func() { srv.Close(); <-done })
		return "http://" + ln.Addr().String() + "/metrics"
	}

	t.Run("loopback", func(t *testing.T) {
		t.Parallel()
		who := "reader"
		url := serve(t, web.GateOptions{Check: readers, Identify: func(net.Conn) access.Peer {
			return access.Peer{Origin: access.Local, Name: who}
		}}, "127.0.0.1:0")
		if code, body := fetch(t, "GET", url, "", "", ""); code != 200 || body != "metrics here" {
			t.Errorf("GET as a reader = %d %q, want 200", code, body)
		}
		if code, _ := fetch(t, "GET", url, "evil.example", "", ""); code != http.StatusMisdirectedRequest {
			t.Errorf("GET with Host evil.example = %d, want 421", code)
		}
		if code, _ := fetch(t, "POST", url, "", "", ""); code != http.StatusMethodNotAllowed {
			t.Errorf("POST = %d, want 405", code)
		}
		who = "stranger" // identified once per connection: a new one
		http.DefaultClient.CloseIdleConnections()
		if code, body := fetch(t, "GET", url, "", "", ""); code != http.StatusForbidden || !strings.Contains(body, refuse.Error()) {
			t.Errorf("GET as a stranger = %d %q, want 403 saying why", code, body)
		}
	})
	t.Run("beyond loopback", func(t *testing.T) {
		t.Parallel()
		g, _ := web.NewGate(web.GateOptions{})
		ln, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		if err := g.CheckListener(ln); err == nil || !strings.Contains(err.Error(), "without authentication") {
			t.Errorf("CheckListener(%s) without Auth = %v, want a refusal", ln.Addr(), err)
		}
		url := serve(t, web.GateOptions{Auth: "ops:s3cret", Check: readers}, "0.0.0.0:0")
		if code, _ := fetch(t, "GET", url, "", "", ""); code != http.StatusUnauthorized {
			t.Errorf("GET without credentials = %d, want 401", code)
		}
		if code, body := fetch(t, "GET", url, "example.com", "ops", "s3cret"); code != 200 || body != "metrics here" {
			t.Errorf("GET with credentials = %d %q, want 200", code, body)
		}
	})
}
