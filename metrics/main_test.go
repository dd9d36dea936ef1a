package metrics

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/internal/arbtest"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// worker is testworker's path, built by TestMain before any arbiter runs.
var worker string

func TestMain(m *testing.M) { os.Exit(arbtest.Main(m, &worker)) }

// runArbiter runs an arbiter on ini (WORKER is testworker) until stop is
// called or the test ends, whichever comes first. An in-process arbiter
// reaps every child of the test binary, so these tests do not run in
// parallel.
func runArbiter(t testing.TB, ini string) (a *arbiter.Arbiter, stop func()) {
	t.Helper()
	cfg := arbtest.LoadINI(t, worker, ini)
	a, err := arbiter.New(cfg, arbiter.Options{Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatalf("arbiter.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("arbiter Run: %v", err)
		}
	}
	t.Cleanup(stop)
	select {
	case <-a.Started():
	case <-time.After(30 * time.Second):
		t.Fatal("arbiter did not start within 30s")
	}
	return a, stop
}

// serve serves the endpoints of a on a loopback HTTP server for the test.
func serve(t testing.TB, o Options) (*Endpoints, *httptest.Server) {
	t.Helper()
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	ep, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mux := http.NewServeMux()
	for path, h := range ep.Routes() {
		mux.Handle(path, h)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		ep.Close()
	})
	return ep, srv
}

// get fetches url and returns the status and body.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// scrape is one parsed /metrics.
type scrape struct {
	text     string
	families map[string]*dto.MetricFamily
}

// scrapeOf fetches and parses srv's /metrics with Prometheus's own text
// parser.
func scrapeOf(t *testing.T, srv *httptest.Server) scrape {
	t.Helper()
	code, body := get(t, srv.URL+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d:\n%s", code, body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return scrape{text: body, families: fams}
}

// value returns the value of the series of name with labels (name=value
// pairs, all of which must match), and whether there is one.
func (s scrape) value(name string, labels ...string) (float64, bool) {
	f := s.families[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

// must is value for a series that must exist.
func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.value(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in:\n%s", name, labels, s.text)
	}
	return v
}

var waitFor = testproc.WaitFor
