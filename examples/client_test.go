package examples_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"
)

// requestTimeout bounds one request of a load: generous, since a request
// may wait in the socket's queue through a whole reload.
const requestTimeout = 30 * time.Second

// pidRE matches the answer of every example worker to GET /.
var pidRE = regexp.MustCompile(`hello from pid (\d+)`)

// fetch GETs url on c and returns the pid the answer names.
func fetch(c *http.Client, url string) (int, error) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s: %q", url, resp.Status, body)
	}
	m := pidRE.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("GET %s = %q, want \"hello from pid N\"", url, body)
	}
	return strconv.Atoi(string(m[1]))
}

// get is fetch for a request that must succeed.
func get(t *testing.T, url string) int {
	t.Helper()
	pid, err := fetch(&http.Client{Timeout: 10 * time.Second}, url)
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// burst sends n requests, conc at a time, each on a new connection so that
// any worker may accept it, and returns the pids that answered.
func burst(t *testing.T, url string, n, conc int) map[int]bool {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	var (
		mu   sync.Mutex
		pids = map[int]bool{}
		errs []error
		wg   sync.WaitGroup
		jobs = make(chan struct{})
	)
	for range conc {
		wg.Go(func() {
			for range jobs {
				pid, err := fetch(c, url)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					pids[pid] = true
				}
				mu.Unlock()
			}
		})
	}
	for range n {
		jobs <- struct{}{}
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		t.Errorf("%d of %d requests failed; first: %v", len(errs), n, errs[0])
	}
	return pids
}

// load is a few clients requesting GET / in a loop, each request on a new
// connection (so that every one goes through the listening socket).
type load struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	lats   []time.Duration // of the answered requests
	failed []error
}

// startLoad starts clients concurrent clients against url, until stop
// or the end of the test.
func startLoad(t *testing.T, url string, clients int) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{cancel: cancel}
	t.Cleanup(func() { l.stop() })
	for range clients {
		l.wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: requestTimeout}
			for ctx.Err() == nil {
				t0 := time.Now()
				_, err := fetch(c, url)
				lat := time.Since(t0)
				l.mu.Lock()
				if err == nil {
					l.lats = append(l.lats, lat)
				} else {
					l.failed = append(l.failed, fmt.Errorf("%s: %w", t0.Format("15:04:05.000"), err))
				}
				l.mu.Unlock()
			}
		})
	}
	return l
}

// served returns the number of requests answered so far.
func (l *load) served() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lats)
}

// stop ends the load and returns the latencies of the answered requests,
// sorted, and the errors of the others; it may be called again.
func (l *load) stop() (lats []time.Duration, failed []error) {
	l.cancel()
	l.wg.Wait()
	slices.Sort(l.lats)
	return l.lats, l.failed
}

// errorsText joins the first few errors for a failure message.
func errorsText(errs []error) string {
	var b bytes.Buffer
	for i, err := range errs {
		if i == 5 {
			fmt.Fprintf(&b, "\n\t... and %d more", len(errs)-i)
			break
		}
		fmt.Fprintf(&b, "\n\t%v", err)
	}
	return b.String()
}

func keys(m map[int]bool) []int {
	var ks []int
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
