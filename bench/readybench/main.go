// Command readybench measures how long the arbiter takes from its start to
// READY=1 on its NOTIFY_SOCKET (what systemd's Type=notify waits for), with
// one watcher of 4 workers: the "Speed" figure of issue 17. Each run execs
// the arbiter binary with a fresh config and a datagram socket bound by
// this process, as systemd binds its own, times from just before the fork
// to the datagram's arrival, then stops the arbiter with SIGTERM and waits
// for its exit 0.
//
//	go run ./bench/readybench -runs 11
//	go run ./bench/readybench -arbiter /path/to/static/arbiter
//
// Without -arbiter it builds ./cmd/arbiter first. It prints each run, then
// the median, the fastest and the slowest, and the binary's size.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("arbiter", "", "the arbiter binary (default: go build ./cmd/arbiter)")
	runs := flag.Int("runs", 11, "starts measured")
	n := flag.Int("n", 4, "workers of the one watcher")
	worker := flag.String("worker", "/bin/sleep 3600", "the workers' command")
	flag.Parse()
	if err := bench(*bin, *runs, *n, *worker); err != nil {
		fmt.Fprintln(os.Stderr, "readybench:", err)
		os.Exit(1)
	}
}

func bench(bin string, runs, n int, worker string) error {
	dir, err := os.MkdirTemp("", "readybench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "arbiter")
		if out, err := exec.Command("go", "build", "-o", bin, "./cmd/arbiter").CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/arbiter (run from the repository's root): %w\n%s", err, out)
		}
	}
	st, err := os.Stat(bin)
	if err != nil {
		return err
	}
	var took []time.Duration
	for i := range runs {
		d, err := run(bin, dir, i, n, worker)
		if err != nil {
			return fmt.Errorf("run %d: %w", i+1, err)
		}
		fmt.Printf("run %2d: start to READY=1 %v\n", i+1, d.Round(10*time.Microsecond))
		took = append(took, d)
	}
	slices.Sort(took)
	fmt.Printf("%s (%.1f MB), 1 watcher of %d workers (%s), %d runs: median %v, fastest %v, slowest %v\n",
		bin, float64(st.Size())/1e6, n, worker, runs, took[len(took)/2].Round(10*time.Microsecond),
		took[0].Round(10*time.Microsecond), took[len(took)-1].Round(10*time.Microsecond))
	return nil
}

// run starts the arbiter once and returns the time to its READY=1.
func run(bin, dir string, i, n int, worker string) (time.Duration, error) {
	ini := filepath.Join(dir, fmt.Sprintf("ready-%d.ini", i))
	text := fmt.Sprintf(`[circus]
endpoint = ipc://%[1]s/ctl-%[2]d.sock
pubsub_endpoint = ipc://%[1]s/pub-%[2]d.sock

[watcher:pool]
cmd = %[3]s
numprocesses = %[4]d
close_child_stdout = true
close_child_stderr = true
`, dir, i, worker, n)
	if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
		return 0, err
	}
	sock := filepath.Join(dir, fmt.Sprintf("notify-%d", i))
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	cmd := exec.Command(bin, ini)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	took, err := awaitReady(conn, start)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, fmt.Errorf("%w; the arbiter said:\n%s", err, out.String())
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("arbiter exit after SIGTERM: %w\n%s", err, out.String())
	}
	return took, nil
}

// awaitReady reads notifications until READY=1 and returns when it came.
func awaitReady(conn *net.UnixConn, start time.Time) (time.Duration, error) {
	if err := conn.SetReadDeadline(start.Add(30 * time.Second)); err != nil {
		return 0, err
	}
	buf := make([]byte, 4096)
	for {
		k, err := conn.Read(buf)
		if err != nil {
			return 0, errors.New("no READY=1 within 30s")
		}
		if slices.Contains(strings.Split(string(buf[:k]), "\n"), "READY=1") {
			return time.Since(start), nil
		}
	}
}
