package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// httpGet fetches url, with Basic credentials if user is set, and returns
// the status and body; 0 if nothing answers (yet).
func httpGet(url, user, pass string) (int, string) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err.Error()
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// /readyz is 503 naming the watcher while it is flapping, and 200 once it
// is back (started again by the operator once its fault is fixed); /healthz is 200 all along; /metrics counts the deaths. The
// real binary, its listener of its own, and the console's listener too.
func TestReadyzFlapping(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Fails while the file broken exists.
	script := filepath.Join(dir, "fragile.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ntest -e "+broken+" && exit 1\nexec "+worker+" sleep\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ops, console := freePort(t), freePort(t)
	a := startCtl(t, dir, fmt.Sprintf(`[circus]
pubsub_endpoint = tcp://127.0.0.1:0
metrics = true
metrics_port = %d
httpd = true
httpd_port = %d

[watcher:web]
cmd = WORKER sleep
numprocesses = 2

[watcher:fragile]
cmd = %s
flapping.attempts = 3
flapping.window = 30
# No retry while the test runs: the operator brings it back.
flapping.retry_in = 600
`, ops, console, script))
	base := "http://127.0.0.1:" + strconv.Itoa(ops)
	var body string
	waitFor(t, "/readyz to say fragile is flapping", 30*time.Second, func() bool {
		var code int
		code, body = httpGet(base+"/readyz", "", "")
		return code == http.StatusServiceUnavailable && strings.Contains(body, "watcher fragile: stopped") &&
			strings.Contains(body, "(flapping")
	})
	if strings.Contains(body, "watcher web") {
		t.Errorf("/readyz names web, which is ready:\n%s", body)
	}
	if code, body := httpGet(base+"/healthz", "", ""); code != http.StatusOK {
		t.Errorf("/healthz while flapping = %d %q, want 200: the loops answer", code, body)
	}
	if err := os.Remove(broken); err != nil {
		t.Fatal(err)
	}
	a.call(t, "start", map[string]any{"name": "fragile", "waiting": true})
	if code, body := httpGet(base+"/readyz", "", ""); code != http.StatusOK || !strings.Contains(body, "ready: 2 autostart watchers") {
		t.Errorf("/readyz once fragile is back = %d %q, want 200", code, body)
	}
	code, text := httpGet(base+"/metrics", "", "")
	if code != http.StatusOK || !strings.Contains(text, `ringmaster_watcher_processes{state="ready",watcher="fragile"} 1`) {
		t.Fatalf("/metrics = %d:\n%s", code, text)
	}
	restarts := 0.0
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, `ringmaster_watcher_restarts_total{reason="exit",watcher="fragile"} `); ok {
			restarts, _ = strconv.ParseFloat(v, 64)
		}
	}
	if restarts < 3 {
		t.Errorf("fragile's exit restarts = %v, want at least flapping.attempts, 3", restarts)
	}
	// The console serves the same endpoints on its own listener.
	if code, body := httpGet("http://127.0.0.1:"+strconv.Itoa(console)+"/readyz", "", ""); code != http.StatusOK {
		t.Errorf("the console's /readyz = %d %q, want 200", code, body)
	}
	if code, body := httpGet("http://127.0.0.1:"+strconv.Itoa(console)+"/metrics", "", ""); code != http.StatusOK ||
		!strings.Contains(body, "ringmaster_watcher_up{watcher=\"web\"} 1") {
		t.Errorf("the console's /metrics = %d:\n%s", code, body)
	}
	a.stop(t, syscall.SIGTERM)
}

// Beyond loopback the listener asks for httpd_auth's credentials; on
// loopback it asks the kernel who connects, and lets only readers in, as
// the console does.
func TestMetricsAccess(t *testing.T) {
	t.Parallel()
	testproc.NeedRoot(t, "connect as other users")
	daemon, err := user.Lookup("daemon")
	if err != nil {
		t.Fatal(err)
	}
	daemonUID, _ := strconv.Atoi(daemon.Uid)
	local, wide := freePort(t), freePort(t)

	startCtl(t, t.TempDir(), fmt.Sprintf(`[circus]
pubsub_endpoint = tcp://127.0.0.1:0
metrics = true
metrics_port = %d
read_users = daemon

[watcher:web]
cmd = WORKER sleep
`, local))
	url := "http://127.0.0.1:" + strconv.Itoa(local) + "/metrics"
	waitFor(t, "the metrics listener", 20*time.Second, func() bool { code, _ := httpGet(url, "", ""); return code != 0 })
	if code, body := httpGetAs(t, daemonUID, url); code != http.StatusOK || !strings.Contains(body, "ringmaster_watcher_up") {
		t.Errorf("GET /metrics as daemon (a reader) = %d %.200q, want 200", code, body)
	}
	if code, body := httpGetAs(t, 65534, url); code != http.StatusForbidden {
		t.Errorf("GET /metrics as nobody = %d %q, want 403", code, body)
	}

	startCtl(t, t.TempDir(), fmt.Sprintf(`[circus]
pubsub_endpoint = tcp://127.0.0.1:0
metrics = true
metrics_host = 0.0.0.0
metrics_port = %d
httpd_auth = ops:s3cret

[watcher:web]
cmd = WORKER sleep
`, wide))
	url = "http://127.0.0.1:" + strconv.Itoa(wide) + "/healthz"
	waitFor(t, "the wide metrics listener", 20*time.Second, func() bool { code, _ := httpGet(url, "", ""); return code != 0 })
	if code, _ := httpGet(url, "", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /healthz without credentials = %d, want 401", code)
	}
	if code, body := httpGet(url, "ops", "s3cret"); code != http.StatusOK {
		t.Errorf("GET /healthz with credentials = %d %q, want 200", code, body)
	}
}

// A metrics port in use fails start-up, exit 1, naming the config line.
func TestMetricsPortInUse(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	port := busy.Addr().(*net.TCPAddr).Port
	path := filepath.Join(t.TempDir(), "test.ini")
	writeINI(t, path, fmt.Sprintf("[circus]\npubsub_endpoint = tcp://127.0.0.1:0\nmetrics = true\nmetrics_port = %d\n\n[watcher:web]\ncmd = WORKER sleep\n", port))
	code, out := runToExit(t, path)
	// writeINI inserts the control endpoint as line 2.
	if want := "test.ini:5: [circus] metrics_port: listen tcp "; code != 1 || !strings.Contains(out, want) {
		t.Errorf("exit code %d, output:\n%s\nwant exit 1 and %q", code, out, want)
	}
}
