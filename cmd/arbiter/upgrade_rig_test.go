package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
	"github.com/ringmaster-dev/ringmaster/pubsub/zmqpub"
)

// What the upgrade tests (issue 18) run against: two builds of the arbiter
// told apart by their version stamp, a load on an HTTP watcher, a worker
// writing numbered lines to files, and subscribers to the events.

// The versions the two builds report, so that a log line or a page can
// say which image runs.
const (
	upgradeV1 = "0.18.0-upgradetest"
	upgradeV2 = "0.19.0-upgradetest"
)

// upgradeBuilds builds the arbiter twice, stamped upgradeV1 and upgradeV2,
// beside the test's other binaries; once for every test.
var upgradeBuilds = sync.OnceValues(func() ([2]string, error) {
	var bins [2]string
	for i, v := range []string{upgradeV1, upgradeV2} {
		bins[i] = filepath.Join(filepath.Dir(arbiterBin), "arbiter-"+v)
		b, err := exec.Command("go", "build", "-ldflags", "-X main.version="+v, "-o", bins[i], ".").CombinedOutput()
		if err != nil {
			return bins, fmt.Errorf("go build %s: %w\n%s", v, err, b)
		}
	}
	return bins, nil
})

// installBinary copies the build src to dst, executable, through a
// temporary name renamed into place: how a package manager replaces a
// binary under a running program (whose /proc/PID/exe then reads
// "(deleted)"). It returns dst's inode.
func installBinary(t *testing.T, src, dst string) uint64 {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := dst + ".new"
	if err := os.WriteFile(tmp, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		t.Fatal(err)
	}
	return inode(t, dst)
}

// writeScript writes an executable shell script.
func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// exeInode is the inode of the program pid runs (/proc/PID/exe), which
// stays that of the old file after it was replaced on disk.
func exeInode(pid int) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/exe", pid), &st); err != nil {
		return 0
	}
	return st.Ino
}

// httpLoad is client goroutines requesting url over and over, each on a
// new connection, so that every request goes through the listening socket.
type httpLoad struct {
	ok, failed atomic.Int64
	worst      atomic.Int64 // the slowest request's nanoseconds
	mu         sync.Mutex
	errs       []string // the first failures, with their time
	stopc      chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

// startLoad starts clients goroutines on url; the test's end stops them,
// and stop ends them earlier.
func startLoad(t *testing.T, url string, clients int) *httpLoad {
	l := &httpLoad{stopc: make(chan struct{})}
	for range clients {
		l.wg.Go(func() {
			c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
			for {
				select {
				case <-l.stopc:
					return
				default:
				}
				start := time.Now()
				err := get(c, url)
				d := int64(time.Since(start))
				for w := l.worst.Load(); d > w && !l.worst.CompareAndSwap(w, d); w = l.worst.Load() {
				}
				if err == nil {
					l.ok.Add(1)
					continue
				}
				l.failed.Add(1)
				l.mu.Lock()
				if len(l.errs) < 10 {
					l.errs = append(l.errs, time.Now().Format("15:04:05.000")+" "+err.Error())
				}
				l.mu.Unlock()
			}
		})
	}
	t.Cleanup(l.stop)
	return l
}

func get(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.ReadAll(resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	return nil
}

// stop ends the clients and waits for them.
func (l *httpLoad) stop() {
	l.stopOnce.Do(func() { close(l.stopc); l.wg.Wait() })
}

// served waits until n more requests have been answered.
func (l *httpLoad) served(t *testing.T, what string, n int64) {
	t.Helper()
	from := l.ok.Load()
	waitFor(t, fmt.Sprintf("%d requests served %s", n, what), 30*time.Second, func() bool { return l.ok.Load() >= from+n })
}

// check fails the test if a request failed.
func (l *httpLoad) check(t *testing.T, what string) {
	t.Helper()
	t.Logf("%s: %d requests answered, %d failed, slowest %v", what, l.ok.Load(), l.failed.Load(), time.Duration(l.worst.Load()).Round(time.Millisecond))
	if n := l.failed.Load(); n != 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		t.Errorf("%s: %d requests failed, want none; the first:\n%s", what, n, strings.Join(l.errs, "\n"))
	}
}

// numbered checks a file of lines "WORD 0", "WORD 1"... as the testworker's
// tick role writes them: it returns how many whole lines there are, and an
// error for the first line that is missing, repeated, split or mangled. A
// last line without its newline is still being written, and not counted.
func numbered(path, word string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	text := string(b)
	if i := strings.LastIndexByte(text, '\n'); i >= 0 {
		text = text[:i+1]
	} else {
		return 0, nil
	}
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	for i, line := range lines {
		if want := word + " " + strconv.Itoa(i); line != want {
			return i, fmt.Errorf("%s: line %d is %q, want %q", filepath.Base(path), i+1, line, want)
		}
	}
	return len(lines), nil
}

// subscriber collects the events of one SUB socket.
type subscriber struct {
	name string
	frames
}

// seqs returns the seq of every event received, in order.
func (s *subscriber) seqs() []uint64 {
	var out []uint64
	for _, fr := range s.list() {
		var v struct{ Seq uint64 }
		if json.Unmarshal([]byte(fr[1]), &v) == nil {
			out = append(out, v.Seq)
		}
	}
	return out
}

// topicSeq returns the seq of the first event received under topic, and
// its body; 0 if there was none.
func (s *subscriber) topicSeq(topic string) (uint64, string) {
	for _, fr := range s.list() {
		if fr[0] == topic {
			var v struct{ Seq uint64 }
			_ = json.Unmarshal([]byte(fr[1]), &v)
			return v.Seq, fr[1]
		}
	}
	return 0, ""
}

// seen reports whether an event with topic, and pid if not 0, was received.
func (s *subscriber) seen(topic string, pid int) bool {
	for _, fr := range s.list() {
		if fr[0] != topic {
			continue
		}
		var v struct {
			Pid int `json:"process_pid"`
		}
		_ = json.Unmarshal([]byte(fr[1]), &v)
		if pid == 0 || v.Pid == pid {
			return true
		}
	}
	return false
}

// subscribeAll connects our zmqpub client and, when python3-zmq is there, a
// libzmq SUB (which reconnects by libzmq's own rules) to endpoint. Without
// python3-zmq only ours runs, except under CI=true, which installs it: the
// test fails there.
func subscribeAll(t *testing.T, dir, endpoint string) []*subscriber {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, err := zmqpub.Dial(ctx, endpoint)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	goSub := &subscriber{name: "zmqpub SUB"}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			topic, body, err := c.Recv()
			if err != nil {
				return
			}
			goSub.add(topic, string(body))
		}
	}()
	t.Cleanup(func() { cancel(); c.Close(); <-done })
	subs := []*subscriber{goSub}
	if !testproc.HavePyzmq() {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s cannot import zmq; CI installs python3-zmq", systemPython)
		}
		t.Logf("%s cannot import zmq: no libzmq subscriber", systemPython)
		return subs
	}
	script := filepath.Join(dir, "sub.py")
	if err := os.WriteFile(script, []byte(pySubScript), 0o644); err != nil {
		t.Fatal(err)
	}
	py := &subscriber{name: "libzmq SUB"}
	cmd := exec.Command(systemPython, script, endpoint)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the python SUB: %v", err)
	}
	pyDone := make(chan struct{})
	go func() {
		defer close(pyDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var pair [2]string
			if json.Unmarshal(sc.Bytes(), &pair) == nil {
				py.add(pair[0], pair[1])
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); <-pyDone })
	return append(subs, py)
}

// checkSeqs fails the test unless the seqs s received rise by one at every
// step: across an upgrade the new image numbers on from the old one's
// last, the old image hands every event over before its exec, and the new
// one holds its events until the subscribers the old one had are back, so
// a subscriber misses none.
func checkSeqs(t *testing.T, s *subscriber) {
	t.Helper()
	seqs := s.seqs()
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Errorf("%s: seq %d follows %d; seqs received: %v", s.name, seqs[i], seqs[i-1], seqs)
			return
		}
	}
}
