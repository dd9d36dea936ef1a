package plugins

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/ringmaster-dev/ringmaster/config"
)

// maxRedirects is Tornado's default max_redirects, which Circus's fetch
// keeps.
const maxRedirects = 5

// errorCode is the code Tornado gives a request that got no answer (a
// refused connection, a timeout).
const errorCode = 599

// httpObserver GETs a URL every loop rate, as Circus's HttpObserver.
type httpObserver struct {
	e      env
	spec   *config.HTTPObserver
	st     *statsdClient
	client *http.Client
}

func newHTTPObserver(e env, s *config.HTTPObserver) (plugin, error) {
	st, err := newStatsd(s.Statsd)
	if err != nil {
		return nil, err
	}
	client := &http.Client{
		// A connection per check, as Tornado's simple client makes: checks
		// are a minute apart, and nothing lingers once the plugin stops.
		// No proxy from the environment either, as Tornado: the check is
		// of the service itself.
		Transport: &http.Transport{DisableKeepAlives: true},
		Timeout:   s.Timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				// Tornado then answers with the last redirect, an error.
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return &httpObserver{e: e, spec: s, st: st, client: client}, nil
}

func (p *httpObserver) run(ctx context.Context) {
	defer p.st.close()
	defer p.client.CloseIdleConnections()
	every(ctx, p.spec.LoopRate, p.lookAfter)
}

func (p *httpObserver) lookAfter(ctx context.Context) {
	start := time.Now()
	code, err := p.get(ctx)
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return // stopping: not the server's failure
	}
	if err == nil && code >= 200 && code < 300 {
		p.st.timing("http_stats.request_time", elapsed.Milliseconds())
		return
	}
	if err == nil {
		err = fmt.Errorf("HTTP %d", code)
	}
	p.e.log.Warn("check failed", "url", p.spec.CheckURL, "code", code, "err", err)
	p.st.increment("http_stats.error")
	p.st.increment("http_stats.error." + strconv.Itoa(code))
	if p.spec.RestartOnError != "" {
		p.e.log.Warn("restarting", "watcher", p.spec.RestartOnError)
		p.e.cmds.cast(ctx, "restart", map[string]any{"name": p.spec.RestartOnError, "match": "simple"})
		p.st.increment("http_stats.restart_on_error")
	}
}

// get fetches the URL and its whole body, as Tornado does before it calls
// back, and returns the status code: errorCode when there was no answer.
func (p *httpObserver) get(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.spec.CheckURL, nil)
	if err != nil {
		return errorCode, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		var ue interface{ Timeout() bool }
		if errors.As(err, &ue) && ue.Timeout() {
			err = fmt.Errorf("no answer within %s", p.spec.Timeout)
		}
		return errorCode, err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return errorCode, err
	}
	return resp.StatusCode, nil
}
