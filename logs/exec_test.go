package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/config"
	"github.com/ringmaster-dev/ringmaster/internal/handover"
	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

// The roles the test binary plays for TestDetachAcrossExec, named by
// roleEnv; dirEnv names the directory they share.
const (
	roleEnv = "RINGMASTER_LOGS_ROLE"
	dirEnv  = "RINGMASTER_LOGS_DIR"
)

// The writer prints execLines numbered lines on stdout, one a millisecond;
// line halfLine is written in two halves, with a pause between them that
// lasts until the old image has detached.
const (
	execLines = 1500
	halfLine  = 700
)

// runRole plays role and returns the process's exit code.
func runRole(role string) int {
	dir := os.Getenv(dirEnv)
	var err error
	switch role {
	case "writer":
		err = writer(dir)
	case "old":
		err = oldImage(dir)
	case "new":
		err = newImage(dir)
	default:
		err = fmt.Errorf("no role %q", role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", role, err)
		return 1
	}
	return 0
}

// numbered is line i of a stream: its number and a body that depends on
// it, some bodies longer than a pipe holds, some longer than a first read.
func numbered(i int) string {
	n := 20 + i%50
	switch {
	case i == halfLine:
		n = 10000
	case i%97 == 0:
		n = 100 << 10
	case i%13 == 0:
		n = 5000
	}
	return strconv.Itoa(i) + " " + strings.Repeat(string(rune('a'+i%26)), n) + "\n"
}

// writer writes numbered lines to stdout, and to stderr as long as stdout
// is being written (into dir/errcount: how many).
func writer(dir string) error {
	stop := make(chan struct{})
	count := make(chan int)
	go func() {
		i := 1
		for ; ; i++ {
			select {
			case <-stop:
				count <- i - 1
				return
			default:
			}
			os.Stderr.WriteString(numbered(i))
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 1; i <= execLines; i++ {
		line := numbered(i)
		if i != halfLine {
			if _, err := os.Stdout.WriteString(line); err != nil {
				return err
			}
			time.Sleep(time.Millisecond)
			continue
		}
		os.Stdout.WriteString(line[:len(line)/2])
		if err := os.WriteFile(filepath.Join(dir, "half"), nil, 0o600); err != nil {
			return err
		}
		if err := waitFile(filepath.Join(dir, "go")); err != nil {
			return err
		}
		os.Stdout.WriteString(line[len(line)/2:])
	}
	close(stop)
	return os.WriteFile(filepath.Join(dir, "errcount"), []byte(strconv.Itoa(<-count)), 0o600)
}

func waitFile(path string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not there within a minute", path)
		}
		time.Sleep(time.Millisecond)
	}
}

// execDoc is what the old image hands the new one.
type execDoc struct {
	handover.Header
	Pipes  []PipeState `json:"pipes"`
	Ring   RingState   `json:"ring"`
	Writer int         `json:"writer"`
	// What Tail showed at Detach, for the new image to compare.
	Kept     int    `json:"kept"`
	LastKept string `json:"last_kept"`
}

func execOutput(dir string) (*Output, error) {
	var d [2]*Dest
	for _, s := range []Stream{Stdout, Stderr} {
		var err error
		d[s], err = Open("w", s, config.Stream{Class: "FileStream", Filename: filepath.Join(dir, s.String()+".log")}, Consoles{})
		if err != nil {
			return nil, err
		}
	}
	return NewOutput(d[Stdout], d[Stderr], nil), nil
}

// oldImage reads a writer's output until the writer is halfway through a
// line and the reader has taken that half, detaches, lets the writer go
// on, and execs the test binary as the new image.
func oldImage(dir string) error {
	o, err := execOutput(dir)
	if err != nil {
		return err
	}
	p, err := o.Pipes(true, true)
	if err != nil {
		return err
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = withRole("writer")
	cmd.Stdout, cmd.Stderr = p.Writer(Stdout), p.Writer(Stderr)
	if err := cmd.Start(); err != nil {
		p.Abort()
		return err
	}
	p.Start(cmd.Process.Pid)
	if err := waitFile(filepath.Join(dir, "half")); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for !stdoutDrained(o) {
		if time.Now().After(deadline) {
			return errors.New("the half line is not read within a minute")
		}
		time.Sleep(time.Millisecond)
	}
	states, err := o.Detach()
	if err != nil {
		return err
	}
	half := numbered(halfLine)[:len(numbered(halfLine))/2]
	if len(states) != 2 || string(states[0].Partial) != half {
		return fmt.Errorf("Detach() = %+v, want 2 and stdout partial %.20q...", states, half)
	}
	lines, _ := o.Tail(Query{})
	if len(lines) == 0 {
		return errors.New("nothing kept before Detach")
	}
	ring, err := o.RingState()
	if err != nil {
		return err
	}
	doc := execDoc{Header: handover.Header{Format: handover.Format}, Pipes: states, Ring: ring,
		Writer: cmd.Process.Pid, Kept: len(lines), LastKept: string(lines[len(lines)-1].Data)}
	fd, err := handover.Write(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		return err
	}
	env := append(withRole("new"), handover.EnvState+"="+strconv.Itoa(fd))
	return syscall.Exec(os.Args[0], []string{os.Args[0], "-test.run=^$"}, env)
}

// withRole is this process's environment for a process playing role.
func withRole(role string) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, roleEnv+"=") })
	return append(env, roleEnv+"="+role)
}

// stdoutDrained reports whether every byte written to the stdout pipe has
// been read.
func stdoutDrained(o *Output) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for r, s := range o.pipes {
		if s != Stdout {
			continue
		}
		n := -1
		if rc, err := r.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.TIOCINQ) })
		}
		return n == 0
	}
	return false
}

// newImage adopts what the old one handed over, reads until the writer
// has exited and its pipes ended, and reports in dir/report.
func newImage(dir string) error {
	fd, ok, err := handover.FromEnv()
	if err != nil || !ok {
		return fmt.Errorf("no hand-over: %v", err)
	}
	var doc execDoc
	if _, err := handover.Read(fd, &doc); err != nil {
		return err
	}
	unix.Close(fd)
	o, err := execOutput(dir)
	if err != nil {
		return err
	}
	if err := o.RestoreRing(doc.Ring); err != nil {
		return err
	}
	if lines, _ := o.Tail(Query{}); len(lines) != doc.Kept || len(lines) > 0 && string(lines[len(lines)-1].Data) != doc.LastKept {
		return fmt.Errorf("restored ring: %d lines, want %d", len(lines), doc.Kept)
	}
	if err := o.Adopt(doc.Pipes); err != nil {
		return err
	}
	// The writer is still this process's child.
	var ws unix.WaitStatus
	if _, err := unix.Wait4(doc.Writer, &ws, 0, nil); err != nil {
		return fmt.Errorf("wait for the writer: %w", err)
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("writer ended with %v", ws)
	}
	if !waitTimeout(&o.wg, time.Minute) {
		return errors.New("pipes not ended a minute after the writer exited")
	}
	_, last := o.Tail(Query{})
	o.Close(0)
	return os.WriteFile(filepath.Join(dir, "report"), fmt.Appendf(nil, "%d %d", doc.Writer, last), 0o600)
}

// TestDetachAcrossExec hands a writing worker's pipes from one image of a
// process to the next through a real exec: the files hold every line once,
// whole and in order, and the kept output goes on where it was.
func TestDetachAcrossExec(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), roleEnv+"=old", dirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("old and new image: %v\n%s", err, stderr.Bytes())
	}
	var writerPid int
	var last uint64
	report, err := os.ReadFile(filepath.Join(dir, "report"))
	if err == nil {
		_, err = fmt.Sscan(string(report), &writerPid, &last)
	}
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	errCount, err := os.ReadFile(filepath.Join(dir, "errcount"))
	if err != nil {
		t.Fatal(err)
	}
	nErr, _ := strconv.Atoi(string(errCount))
	checkNumbered(t, filepath.Join(dir, "stdout.log"), execLines)
	checkNumbered(t, filepath.Join(dir, "stderr.log"), nErr)
	if want := uint64(execLines + nErr); last != want {
		t.Errorf("the new image numbers its last line %d, want %d (every line of both images)", last, want)
	}
	testproc.WaitFor(t, "the writer gone", 10*time.Second, func() bool { return testproc.Gone(writerPid) })
}

// checkNumbered checks that path holds numbered lines 1 to n, each whole,
// each once.
func checkNumbered(t *testing.T, path string, n int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		want := numbered(i)
		if !bytes.HasPrefix(b, []byte(want)) {
			got, _, _ := bytes.Cut(b, []byte{'\n'})
			t.Fatalf("%s: line %d is %.40q... (%d bytes), want %.40q... (%d bytes)", filepath.Base(path), i, got, len(got)+1, want, len(want))
		}
		b = b[len(want):]
	}
	if len(b) > 0 {
		t.Errorf("%s: %d bytes after line %d: %.40q", filepath.Base(path), len(b), n, b)
	}
}
