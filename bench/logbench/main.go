// Command logbench measures how fast a worker's stdout reaches its
// FileStream through Ringmaster, against `cat` writing the same data to a
// file, for the "Speed" target of the output-streams issue: at least 70%
// of cat's throughput.
//
// It writes -size bytes of 100-byte lines to a data file, then, -rounds
// times, alternating:
//
//   - cat: `cat data > out` (the floor the issue names; GNU cat may copy
//     inside the kernel with copy_file_range, which no reader of a pipe
//     can);
//   - dd: `dd bs=128k`, a plain read and write loop between two files;
//   - cat|cat: `cat data | cat > out`, the same data through a pipe into
//     a second process that writes the file: what any supervisor that
//     captures output pays at least;
//   - ringmaster: a watcher running `cat data`, respawn = false, its
//     stdout a FileStream, from just before arbiter.Run until the file
//     holds every byte; and the same with rotation (max_bytes 64 MiB,
//     backup_count 20) and with a time_format prefix on every line.
//
// Each figure is the median over the rounds, in MB/s, with its ratio to
// cat. Files go to -dir (default the system's temporary directory, so
// pass a disk path to measure a disk rather than a tmpfs).
//
//	go run ./bench/logbench -size 512M -rounds 5
//
// With -follow it measures instead what following every watcher's output
// with `circusctl logs -f` costs the arbiter (see follow.go):
//
//	go run ./bench/logbench -follow -watchers 10 -rate 10000 -window 10s -rounds 3
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringmaster-dev/ringmaster/arbiter"
	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/logs"
)

func main() {
	size := flag.String("size", "512M", "bytes of output per run (K, M or G suffix)")
	rounds := flag.Int("rounds", 5, "runs of each case; the median is reported")
	dir := flag.String("dir", "", "where the data and the logs go (default: a new temporary directory)")
	var fb followBench
	follow := flag.Bool("follow", false, "measure circusctl logs -f against no follower instead")
	flag.IntVar(&fb.watchers, "watchers", 10, "with -follow: watchers writing")
	flag.IntVar(&fb.rate, "rate", 10000, "with -follow: lines a second, all watchers together")
	flag.DurationVar(&fb.window, "window", 10*time.Second, "with -follow: each measurement's length")
	emitRate := flag.Int("emit", 0, "play the -follow phase's worker: write this many lines a second")
	flag.Parse()
	if *emitRate > 0 || *follow {
		fb.rounds = *rounds
		var err error
		if *emitRate > 0 {
			err = emit(*emitRate)
		} else {
			err = fb.run()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "logbench:", err)
			os.Exit(1)
		}
		return
	}
	n, err := parseSize(*size)
	if err == nil {
		err = run(n, *rounds, *dir)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "logbench:", err)
		os.Exit(1)
	}
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n * mult, err
}

type result struct {
	name  string
	times []time.Duration
}

func run(size int64, rounds int, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "logbench")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	data := filepath.Join(dir, "data")
	if err := writeData(data, size); err != nil {
		return err
	}
	defer os.Remove(data)
	cases := []struct {
		name string
		run  func(out string) error
	}{
		{"cat > file", func(out string) error { return shell(fmt.Sprintf("cat %s > %s", data, out)) }},
		{"dd bs=128k", func(out string) error { return shell(fmt.Sprintf("dd if=%s of=%s bs=128k status=none", data, out)) }},
		{"cat | cat > file", func(out string) error { return shell(fmt.Sprintf("cat %s | cat > %s", data, out)) }},
		{"ringmaster FileStream", func(out string) error { return arbiterRun(data, out, size, "") }},
		{"ringmaster, rotating 64 MiB", func(out string) error {
			return arbiterRun(data, out, size, "stdout_stream.max_bytes = 67108864\nstdout_stream.backup_count = 20\n")
		}},
		{"ringmaster, time_format", func(out string) error {
			return arbiterRun(data, out, -1, "stdout_stream.time_format = %Y-%m-%d %H:%M:%S\n")
		}},
	}
	results := make([]result, len(cases))
	for r := range rounds {
		for i, c := range cases {
			out := filepath.Join(dir, fmt.Sprintf("out%d", i))
			start := time.Now()
			if err := c.run(out); err != nil {
				return fmt.Errorf("%s: %w", c.name, err)
			}
			results[i].name = c.name
			results[i].times = append(results[i].times, time.Since(start))
			removeLogs(out)
		}
		fmt.Fprintf(os.Stderr, "round %d/%d done\n", r+1, rounds)
	}
	fmt.Printf("%d MiB of 100-byte lines, %d rounds, median; files in %s\n", size>>20, rounds, dir)
	base, piped := median(results[0].times), median(results[2].times)
	for _, r := range results {
		m := median(r.times)
		fmt.Printf("  %-30s %6.0f MB/s  %5.2fx cat  %5.2fx cat|cat  (min %v, median %v)\n",
			r.name, float64(size)/m.Seconds()/1e6, base.Seconds()/m.Seconds(), piped.Seconds()/m.Seconds(),
			slices.Min(r.times).Round(time.Millisecond), m.Round(time.Millisecond))
	}
	return nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func writeData(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i, n := 0, int64(0); n < size; i++ {
		l := fmt.Sprintf("%09d %s\n", i, strings.Repeat(string(rune('a'+i%26)), 89))
		if n+int64(len(l)) > size {
			l = l[:size-n-1] + "\n"
		}
		w.WriteString(l)
		n += int64(len(l))
	}
	if err := w.Flush(); err != nil {
		return err
	}
	return f.Close()
}

func shell(script string) error {
	return exec.Command("/bin/sh", "-c", script).Run()
}

// arbiterRun runs `cat data` as a watcher whose stdout goes to out (with
// extra stream keys) and returns when the logs hold want bytes (-1: when
// the data has gone through, the prefix making the file longer).
func arbiterRun(data, out string, want int64, extra string) error {
	ini := fmt.Sprintf(`[watcher:cat]
cmd = cat %s
respawn = false
stdout_stream.class = FileStream
stdout_stream.filename = %s
%s`, data, out, extra)
	cfg, err := config.Parse("logbench.ini", []byte(ini))
	if err != nil {
		return err
	}
	a, err := arbiter.New(cfg, arbiter.Options{})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	dataLines := int64(0)
	if want < 0 {
		st, err := os.Stat(data)
		if err != nil {
			return err
		}
		dataLines = st.Size() / 100
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		if want >= 0 && logSize(out) >= want {
			return nil
		}
		if want < 0 {
			// Done once the last line has been read; tail counts them.
			if w := a.Watcher("cat"); w != nil {
				if _, last := w.Output().Tail(logs.Query{Since: ^uint64(0)}); int64(last) >= dataLines {
					return nil
				}
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("output incomplete after 10 minutes")
}

func logSize(out string) int64 {
	var n int64
	matches, _ := filepath.Glob(out + "*")
	for _, m := range matches {
		if st, err := os.Stat(m); err == nil {
			n += st.Size()
		}
	}
	return n
}

func removeLogs(out string) {
	matches, _ := filepath.Glob(out + "*")
	for _, m := range matches {
		os.Remove(m)
	}
}
