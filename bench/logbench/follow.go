package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/control"
	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// The follow phase (-follow) measures what `circusctl logs -f` costs the
// arbiter: the real arbiter binary runs -watchers watchers whose workers
// (this program, -emit) write -rate lines a second in all, kept in memory
// only (QueueStream), and the arbiter's cpu is read from /proc/PID/stat
// over windows of -window, alternately with no follower (the floor) and
// with the real circusctl following every watcher. The follower's lines
// are read and checked: each worker numbers its lines, so a line dropped
// or repeated anywhere between the worker and the reader shows as a gap.
type followBench struct {
	watchers, rate int
	window         time.Duration
	rounds         int
}

// emit is the worker: rate lines a second of 100 bytes, numbered, written
// every 10ms in one write, until killed.
func emit(rate int) error {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	start := time.Now()
	pad := strings.Repeat("x", 89)
	n := 0
	for range tick.C {
		due := int(time.Since(start).Seconds() * float64(rate))
		for ; n < due; n++ {
			fmt.Fprintf(w, "%09d %s\n", n, pad)
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func (b followBench) run() error {
	dir, err := os.MkdirTemp("", "logbench-follow")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bins, err := buildBinaries(dir)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	endpoint := "ipc://" + filepath.Join(dir, "control.sock")
	var ini strings.Builder
	fmt.Fprintf(&ini, "[circus]\nendpoint = %s\npubsub_endpoint = tcp://127.0.0.1:0\n", endpoint)
	for i := range b.watchers {
		fmt.Fprintf(&ini, "\n[watcher:w%02d]\ncmd = %s -emit %d\nstdout_stream.class = QueueStream\n", i, self, b.rate/b.watchers)
	}
	path := filepath.Join(dir, "circus.ini")
	if err := os.WriteFile(path, []byte(ini.String()), 0o644); err != nil {
		return err
	}
	arb := exec.Command(bins["arbiter"], path)
	arb.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := arb.Start(); err != nil {
		return err
	}
	defer func() {
		arb.Process.Signal(syscall.SIGTERM)
		arb.Wait()
	}()
	if err := waitControl(endpoint, b.watchers); err != nil {
		return err
	}
	time.Sleep(b.window) // warm-up: every worker writing, the rings full

	var floor, follow, ctl []float64
	var lines, dropped, gaps int
	for r := range b.rounds {
		c, err := cpuOver(arb.Process.Pid, b.window)
		if err != nil {
			return err
		}
		floor = append(floor, c)
		f, err := startFollow(bins["circusctl"], endpoint)
		if err != nil {
			return err
		}
		c, err = cpuOver(arb.Process.Pid, b.window)
		if err != nil {
			return err
		}
		fc, err := f.stop()
		if err != nil {
			return err
		}
		follow, ctl = append(follow, c), append(ctl, fc)
		lines, dropped, gaps = lines+f.lines, dropped+f.dropped, gaps+f.gaps
		fmt.Fprintf(os.Stderr, "round %d/%d: arbiter %.1f%% without a follower, %.1f%% with; %d lines followed\n", r+1, b.rounds, floor[r], c, f.lines)
	}
	fmt.Printf("logs -f: %d watchers writing %d lines/s in all (100-byte lines, QueueStream), windows of %v, %d rounds, median\n",
		b.watchers, b.rate, b.window, b.rounds)
	fmt.Printf("  %-34s %5.1f%% of a core\n", "arbiter, no follower (floor)", med(floor))
	fmt.Printf("  %-34s %5.1f%% of a core  (+%.1f)\n", "arbiter, circusctl logs -f", med(follow), med(follow)-med(floor))
	fmt.Printf("  %-34s %5.1f%% of a core\n", "circusctl logs -f itself", med(ctl))
	fmt.Printf("  follower: %d lines read (%.0f/s), %d dropped, %d gaps\n", lines, float64(lines)/(float64(b.rounds)*b.window.Seconds()), dropped, gaps)
	if dropped > 0 || gaps > 0 {
		return fmt.Errorf("the follower missed lines: %d dropped, %d gaps", dropped, gaps)
	}
	return nil
}

// buildBinaries builds the arbiter and circusctl into dir.
func buildBinaries(dir string) (map[string]string, error) {
	bins := map[string]string{}
	for _, name := range []string{"arbiter", "circusctl"} {
		bin := filepath.Join(dir, name)
		build := exec.Command("go", "build", "-o", bin, "github.com/ringmaster-dev/ringmaster/cmd/"+name)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("build %s: %w", name, err)
		}
		bins[name] = bin
	}
	return bins, nil
}

// waitControl waits until the arbiter at endpoint answers with n watchers.
func waitControl(endpoint string, n int) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := control.Dial(endpoint, time.Second); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			raw, err := c.Call(ctx, "list", nil)
			cancel()
			c.Close()
			if err == nil && strings.Count(string(raw), `"w`) >= n {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return errors.New("the arbiter did not answer within 30s")
}

// cpuOver returns the cpu pid used over d, in percent of one core.
func cpuOver(pid int, d time.Duration) (float64, error) {
	var rd procfs.Reader
	s0, err := rd.Stat(pid)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	time.Sleep(d)
	s1, err := rd.Stat(pid)
	if err != nil {
		return 0, err
	}
	ticks := float64(s1.Utime + s1.Stime - s0.Utime - s0.Stime)
	return 100 * ticks / procfs.ClockTicks / time.Since(t0).Seconds(), nil
}

// follower is a running circusctl logs -f and what its output showed.
type follower struct {
	cmd                  *exec.Cmd
	done                 chan error
	lines, dropped, gaps int
}

var followLine = regexp.MustCompile(`^\S+ \S+ (w\d+)\[\d+\] stdout: (\d{9}) `)

// startFollow starts circusctl logs -f on every watcher and reads its
// lines, checking each worker's numbering.
func startFollow(bin, endpoint string) (*follower, error) {
	f := &follower{cmd: exec.Command(bin, "--endpoint", endpoint, "logs", "-f", "--since", "0s"), done: make(chan error, 1)}
	pipe, err := f.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	f.cmd.Stderr = os.Stderr
	if err := f.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		last := map[string]int{}
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			l := sc.Text()
			if strings.HasPrefix(l, "-- ") {
				f.dropped++
				continue
			}
			m := followLine.FindStringSubmatch(l)
			if m == nil {
				continue // the arbiter's own lines
			}
			n, _ := strconv.Atoi(m[2])
			if p, ok := last[m[1]]; ok && n != p+1 {
				f.gaps++
			}
			last[m[1]] = n
			f.lines++
		}
		f.done <- f.cmd.Wait()
	}()
	return f, nil
}

// stop ends the follower and returns the cpu it used, in percent of one
// core over its life.
func (f *follower) stop() (float64, error) {
	var rd procfs.Reader
	st, err := rd.Stat(f.cmd.Process.Pid)
	if err != nil {
		return 0, err
	}
	life, err := lifetime(f.cmd.Process.Pid, st.StartTime)
	if err != nil {
		return 0, err
	}
	f.cmd.Process.Signal(syscall.SIGINT)
	if err := <-f.done; err != nil {
		return 0, fmt.Errorf("circusctl logs -f: %w", err)
	}
	return 100 * float64(st.Utime+st.Stime) / procfs.ClockTicks / life.Seconds(), nil
}

// lifetime is how long the process started at start (clock ticks after
// boot) has run.
func lifetime(pid int, start uint64) (time.Duration, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	up, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/uptime: %w", err)
	}
	return time.Duration((up - float64(start)/procfs.ClockTicks) * float64(time.Second)), nil
}

func med(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
