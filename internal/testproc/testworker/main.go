// Command testworker plays the worker roles of Ringmaster's tests. The first
// argument names the role:
//
//	serve [--fd N] [--notify]
//	                     answer HTTP on fd N, or on the LISTEN_FDS socket;
//	                     with --notify, send READY=1 to NOTIFY_SOCKET once
//	                     serving, and WATCHDOG=1 every WATCHDOG_USEC/4 until
//	                     SIGUSR1 (after which it hangs)
//	exit CODE            exit at once with CODE
//	sleep                sleep until killed
//	ignoreterm FILE      ignore SIGTERM, start a grandchild (which ignores it
//	                     too), write "PID GRANDCHILDPID" to FILE, sleep
//	describe FILE        write the process state (ids, limits, umask, nice,
//	                     env, cwd, fds) as JSON to FILE, then sleep
//	childoutside FILE    start a child in a process group of its own, write
//	                     "PID CHILDPID" to FILE, sleep
//	orphan FILE          start a grandchild in a new session that lives
//	                     200ms, write its pid to FILE, exit 0
//	flood BYTES [LEN]    write checked lines of LEN bytes (default 100) to
//	                     stdout, BYTES in all, as fast as it can, then sleep
//	tick INTERVAL        write "tick N" to stdout and "tock N" to stderr
//	                     every INTERVAL, for ever
//	odd                  write output that is hard to carry whole (see odd),
//	                     then sleep
//	heartbeat ADDR EVERY send "PID;TIMESTAMP" over UDP to ADDR every EVERY
//	                     (a WatchDog heartbeat); after SIGUSR1, fall silent
//	                     and sleep
//	hog BYTES [WID LEAKER]
//	                     allocate and touch BYTES of memory (unless WID and
//	                     LEAKER are given and differ), then sleep
//	spin                 keep one core busy for ever
//	forkbomb FILE MAX    start children (sleepers) until a fork fails or MAX
//	                     run, writing "STARTED" after each and "STARTED
//	                     ERROR" at the end to FILE, then sleep
//	daemonize FILE       start a sleeping child in a session of its own (as a
//	                     daemon detaches), write "PID CHILDPID" to FILE, sleep
//	spawn ROLE ARGS...   start a child playing ROLE ARGS (in the worker's
//	                     process group; not waited for), sleep
//	readywhen FILE       send STATUS=waiting for FILE to NOTIFY_SOCKET, and
//	                     once FILE exists STATUS=serving and READY=1; sleep
//	serial FD DURATION   serve one connection at a time on fd FD: read a
//	                     line, work DURATION, answer "pid N", close; the
//	                     others wait in the accept queue; drain on SIGTERM
//	termnote FILE        handle SIGTERM, send READY=1 (with NOTIFY_SOCKET),
//	                     write "PID" to FILE; at SIGTERM write "PID TERM"
//	                     and exit 0
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/testproc"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "testworker: role missing")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "exit":
		code, _ := strconv.Atoi(arg(2))
		os.Exit(code)
	case "sleep":
		sleepForever()
	case "ignoreterm":
		signal.Ignore(syscall.SIGTERM)
		gc := exec.Command(os.Args[0], "sleepignore")
		if err := gc.Start(); err != nil {
			fail(err)
		}
		write(arg(2), fmt.Sprintf("%d %d", os.Getpid(), gc.Process.Pid))
		sleepForever()
	case "sleepignore":
		signal.Ignore(syscall.SIGTERM)
		sleepForever()
	case "describe":
		describe(arg(2))
		sleepForever()
	case "childoutside":
		// A child that left the worker's process group: only
		// stop_children reaches it.
		gc := exec.Command(os.Args[0], "sleep")
		gc.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := gc.Start(); err != nil {
			fail(err)
		}
		write(arg(2), fmt.Sprintf("%d %d", os.Getpid(), gc.Process.Pid))
		sleepForever()
	case "orphan":
		gc := exec.Command(os.Args[0], "sleepfor", "200ms")
		gc.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := gc.Start(); err != nil {
			fail(err)
		}
		write(arg(2), strconv.Itoa(gc.Process.Pid))
		os.Exit(0)
	case "flood":
		n, _ := strconv.Atoi(arg(2))
		size := 100
		if arg(3) != "" {
			size, _ = strconv.Atoi(arg(3))
		}
		flood(n, size)
		sleepForever()
	case "tick":
		d, _ := time.ParseDuration(arg(2))
		for i := 0; ; i++ {
			fmt.Fprintf(os.Stdout, "tick %d\n", i)
			fmt.Fprintf(os.Stderr, "tock %d\n", i)
			time.Sleep(d)
		}
	case "odd":
		odd()
		sleepForever()
	case "sleepfor":
		d, _ := time.ParseDuration(arg(2))
		time.Sleep(d)
	case "heartbeat":
		every, _ := time.ParseDuration(arg(3))
		heartbeat(arg(2), every)
	case "hog":
		if arg(3) == "" || arg(3) == arg(4) {
			n, _ := strconv.Atoi(arg(2))
			hog = make([]byte, n)
			for i := 0; i < n; i += 4096 {
				hog[i] = 1 // resident only once written
			}
		}
		sleepForever()
	case "spin":
		for {
			spins.Add(1)
		}
	case "forkbomb":
		limit, _ := strconv.Atoi(arg(3))
		n := 0
		for ; n < limit; n++ {
			if err := exec.Command(os.Args[0], "sleep").Start(); err != nil {
				write(arg(2), fmt.Sprintf("%d %v", n, err))
				sleepForever()
			}
			write(arg(2), strconv.Itoa(n+1))
		}
		write(arg(2), fmt.Sprintf("%d limit reached", n))
		sleepForever()
	case "daemonize":
		d := exec.Command(os.Args[0], "sleep")
		d.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := d.Start(); err != nil {
			fail(err)
		}
		write(arg(2), fmt.Sprintf("%d %d", os.Getpid(), d.Process.Pid))
		sleepForever()
	case "spawn":
		if err := exec.Command(os.Args[0], os.Args[2:]...).Start(); err != nil {
			fail(err)
		}
		sleepForever()
	case "serial":
		serial(os.Args[2:])
	case "termnote":
		termnote(arg(2))
	case "readywhen":
		notify(fmt.Sprintf("STATUS=waiting for %s\n", filepath.Base(arg(2))))
		for {
			if _, err := os.Stat(arg(2)); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		notify("STATUS=serving\nREADY=1\n")
		sleepForever()
	default:
		fail(fmt.Errorf("unknown role %q", os.Args[1]))
	}
}

// hog and spins keep the work of hog and spin observable, so that the
// compiler cannot drop it.
var (
	hog   []byte
	spins atomic.Uint64
)

// sleepForever blocks until the process is killed. A bare select{} would
// not: with no other goroutine the runtime reports a deadlock and exits.
func sleepForever() {
	for {
		time.Sleep(time.Hour)
	}
}

func arg(i int) string {
	if i < len(os.Args) {
		return os.Args[i]
	}
	return ""
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "testworker:", err)
	os.Exit(3)
}

// write replaces path atomically, so a reader polling for it never sees a
// partial file.
func write(path, s string) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s), 0o666); err != nil {
		fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		fail(err)
	}
}

func serve(args []string) {
	fd := -1
	notify := false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "--fd" && i+1 < len(args):
			fd, _ = strconv.Atoi(args[i+1])
		case args[i] == "--notify":
			notify = true
		}
	}
	if fd < 0 {
		if os.Getenv("LISTEN_PID") != strconv.Itoa(os.Getpid()) {
			fail(fmt.Errorf("no --fd and LISTEN_PID=%q is not my pid %d", os.Getenv("LISTEN_PID"), os.Getpid()))
		}
		if n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS")); n < 1 {
			fail(fmt.Errorf("no --fd and LISTEN_FDS=%q", os.Getenv("LISTEN_FDS")))
		}
		fd = 3
	}
	l, err := net.FileListener(os.NewFile(uintptr(fd), "listener"))
	if err != nil {
		fail(err)
	}
	pid := os.Getpid()
	// After SIGUSR1 the worker hangs: it accepts connections and never
	// answers them, while staying alive, as a deadlocked server does.
	var hung atomic.Bool
	stop := make(chan struct{})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hung.Load() {
			<-stop
			return
		}
		if r.URL.Path == "/healthz" {
			// For tests to see that checks arrive.
			fmt.Println("healthz")
		}
		fmt.Fprintf(w, "pid %d\n", pid)
	})}
	if notify {
		go sdNotify(&hung)
	}
	go func() {
		c := make(chan os.Signal, 1)
		signal.Notify(c, syscall.SIGTERM, syscall.SIGUSR1)
		for sig := range c {
			if sig == syscall.SIGUSR1 {
				hung.Store(true)
				continue
			}
			close(stop)
			srv.Close()
			return
		}
	}()
	_ = srv.Serve(l)
}

// sdNotify tells the arbiter the worker is ready, as sd_notify(3) does,
// then keeps its watchdog fed until the worker hangs.
func sdNotify(hung *atomic.Bool) {
	c := dialNotify()
	if _, err := c.Write([]byte("STATUS=serving\nREADY=1\n")); err != nil {
		fail(err)
	}
	usec, _ := strconv.Atoi(os.Getenv("WATCHDOG_USEC"))
	if usec <= 0 {
		return
	}
	for !hung.Load() {
		if _, err := c.Write([]byte("WATCHDOG=1")); err != nil {
			fail(err)
		}
		time.Sleep(time.Duration(usec) * time.Microsecond / 4)
	}
}

func describe(path string) {
	s := testproc.State{Pid: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), Env: map[string]string{}}
	s.Groups, _ = os.Getgroups()
	s.Umask = syscall.Umask(0)
	syscall.Umask(s.Umask)
	prio, _ := syscall.Getpriority(syscall.PRIO_PROCESS, 0)
	s.Nice = 20 - prio // the raw syscall returns 20 - nice
	var rl syscall.Rlimit
	_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	s.NoFile = [2]uint64{rl.Cur, rl.Max}
	_ = syscall.Getrlimit(syscall.RLIMIT_CORE, &rl)
	s.Core = [2]uint64{rl.Cur, rl.Max}
	s.Cwd, _ = os.Getwd()
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		s.Env[k] = v
	}
	s.Pgid, _ = syscall.Getpgid(0)
	// The fds as they were at exec: read /proc before the runtime opens
	// more than its own (the epoll fd and its pipe are created lazily, on
	// first network use, which describe never makes).
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			fd, _ := strconv.Atoi(e.Name())
			// The runtime itself opens /proc/self/fd for this listing and,
			// since Go 1.25, its cgroup's cpu files at start-up.
			if t, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && !strings.HasPrefix(t, "/proc/") && !strings.HasPrefix(t, "/sys/fs/cgroup/") {
				s.Fds = append(s.Fds, fd)
			}
		}
	}
	if fl, err := fcntl(3); err == nil {
		s.NonBlock3 = fl&syscall.O_NONBLOCK != 0
	}
	if fl, err := fcntl(1); err == nil {
		s.NonBlock1 = fl&syscall.O_NONBLOCK != 0
	}
	if fl, err := fcntl(2); err == nil {
		s.NonBlock2 = fl&syscall.O_NONBLOCK != 0
	}
	b, _ := json.Marshal(s)
	write(path, string(b))
}

func fcntl(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0)
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// floodLine is line i of flood, size bytes with its newline: its number,
// the CRC-32 of the rest, and filler, so that a reader can tell a line
// that is whole from one cut, joined or repeated.
func floodLine(i, size int) string {
	head := fmt.Sprintf("%09d ", i)
	pad := strings.Repeat(string(rune('a'+i%26)), max(size-len(head)-10, 1))
	return fmt.Sprintf("%s%08x %s\n", head, crc32.ChecksumIEEE([]byte(pad)), pad)
}

func flood(total, size int) {
	w := bufio.NewWriterSize(os.Stdout, 64<<10)
	for i, n := 0, 0; n < total; i++ {
		l := floodLine(i, size)
		w.WriteString(l)
		n += len(l)
	}
	if err := w.Flush(); err != nil {
		fail(err)
	}
}

// odd writes a line in three writes with pauses between them, a line of
// 1 MiB, every byte value but newline, and a last line without a newline.
func odd() {
	for _, s := range []string{"sp", "li", "t\n"} {
		os.Stdout.WriteString(s)
		time.Sleep(20 * time.Millisecond)
	}
	os.Stdout.WriteString(strings.Repeat("m", 1<<20) + "\n")
	var bin []byte
	for i := range 256 {
		if i != '\n' {
			bin = append(bin, byte(i))
		}
	}
	os.Stdout.Write(append(bin, '\n'))
	os.Stdout.WriteString("no newline")
}

// heartbeat sends WatchDog heartbeats to addr until SIGUSR1, then sleeps:
// a worker that hangs while staying alive.
func heartbeat(addr string, every time.Duration) {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		fail(err)
	}
	silence := make(chan os.Signal, 1)
	signal.Notify(silence, syscall.SIGUSR1)
	t := time.NewTicker(every)
	for {
		fmt.Fprintf(conn, "%d;%f", os.Getpid(), float64(time.Now().UnixNano())/1e9)
		select {
		case <-silence:
			sleepForever()
		case <-t.C:
		}
	}
}

// dialNotify connects to the arbiter's NOTIFY_SOCKET.
func dialNotify() *net.UnixConn {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		fail(fmt.Errorf("no NOTIFY_SOCKET"))
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		fail(err)
	}
	return c
}

// notify sends msg to NOTIFY_SOCKET, as sd_notify(3) does.
func notify(msg string) {
	c := dialNotify()
	defer c.Close()
	if _, err := c.Write([]byte(msg)); err != nil {
		fail(err)
	}
}
