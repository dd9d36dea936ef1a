package stats

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"sync"
	"time"

	"github.com/ringmaster-dev/ringmaster/internal/procfs"
)

// cpuWindow is the shortest interval a cpu percentage is measured over.
// With /proc's 10 ms tick, a shorter one would be mostly noise.
const cpuWindow = 200 * time.Millisecond

// markTTL is how long the cpu baseline of a process that is no longer
// sampled is kept.
const markTTL = time.Minute

// identTTL is how long a process's real uid and argv[0] are reused before
// they are read again. Reading /proc/PID/status costs a third of a sample,
// and a worker's uid is set before exec, so it rarely changes after (a
// program that drops privileges itself shows the new user within identTTL).
const identTTL = 10 * time.Second

// Sampler samples processes from /proc. It remembers the previous sample of
// each process so that the cpu percentage covers the time since then, and
// caches user names. It is safe for concurrent use: the stats publisher and
// the stats and dstats commands share one, so that a command's sample and
// the stream's see the same baselines.
type Sampler struct {
	// Immutable after NewSampler.
	pageSize uint64
	memTotal uint64  // bytes
	bootTime float64 // epoch seconds
	now      func() time.Time

	mu    sync.Mutex
	r     reader
	marks map[int]procMark // by pid
	users map[int]string   // by uid
}

// procMark is what the Sampler remembers of one process. cur is the
// latest sample that moved the cpu baseline, prev the one before;
// cur.at-prev.at is at least cpuWindow, so a sample soon after cur is
// measured against prev. uid and cmdline were read at identAt (zero: not
// yet).
type procMark struct {
	start     uint64 // starttime, which tells a reused pid apart
	cur, prev cpuPoint
	identAt   time.Time
	comm      string // at identAt: an exec since then makes the identity stale
	uid       int
	cmdline   string
}

type cpuPoint struct {
	at    time.Time // with its monotonic reading
	ticks uint64    // utime+stime
}

// NewSampler returns a Sampler. It reads the page size, MemTotal and the
// boot time once.
func NewSampler() (*Sampler, error) {
	s := &Sampler{
		pageSize: uint64(os.Getpagesize()),
		now:      time.Now,
		marks:    make(map[int]procMark),
		users:    make(map[int]string),
	}
	var err error
	if s.memTotal, err = s.r.memTotal(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	if s.bootTime, err = s.r.bootTime(); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	return s, nil
}

// Process samples one process. p.Started and p.Wid, when Started is set,
// mark a worker: its age counts from Started and its info carries
// "started" and "wid". With children, its direct children are sampled too
// (each without children of its own), as Circus's stats and dstats do. A
// process that does not exist is ErrNoProcess.
func (s *Sampler) Process(p Process, children bool) (Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sampleLocked(p, s.now(), children)
}

// Collect samples every worker of src, the arbiter itself (this process)
// and src's sockets. Workers that exit meanwhile are left out. With
// children, each process's direct children are sampled too. The error is
// src's, or ctx's.
func (s *Sampler) Collect(ctx context.Context, src Source, children bool) (*Snapshot, error) {
	ws, err := src.Watchers(ctx)
	if err != nil {
		return nil, err
	}
	socks := src.Sockets()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	snap := &Snapshot{Time: now, Watchers: make([]WatcherStats, len(ws))}
	for i, w := range ws {
		snap.Watchers[i].Name = w.Name
		for _, p := range w.Procs {
			in, err := s.sampleLocked(p, now, children)
			if err != nil {
				continue // gone, or unreadable: Circus skips it too
			}
			snap.Watchers[i].Procs = append(snap.Watchers[i].Procs, in)
		}
	}
	if in, err := s.sampleLocked(Process{Pid: os.Getpid()}, now, children); err == nil {
		snap.Arbiter = in
	}
	for _, sk := range socks {
		snap.Sockets = append(snap.Sockets, SocketStats{
			Name:    sk.Name,
			FD:      sk.FD,
			Address: sk.Address,
			Reads:   socketReads(sk.Conn),
		})
	}
	for pid, m := range s.marks {
		if now.Sub(m.cur.at) > markTTL {
			delete(s.marks, pid)
		}
	}
	return snap, nil
}

// sampleLocked samples p at now.
func (s *Sampler) sampleLocked(p Process, now time.Time, children bool) (Info, error) {
	st, err := s.r.Stat(p.Pid)
	if err != nil {
		return Info{}, err
	}
	in := Info{
		Pid:        p.Pid,
		Nice:       st.Nice,
		CPUTime:    time.Duration(st.Utime+st.Stime+st.Cutime+st.Cstime) * (time.Second / clockTicks),
		CreateTime: float64(st.StartTime)/clockTicks + s.bootTime, // psutil's arithmetic, to the last bit
		CPU:        s.cpuLocked(p.Pid, st, now),
		Started:    p.Started,
	}
	if p.Started.IsZero() {
		in.Age = epoch(now) - in.CreateTime
	} else {
		in.Wid = p.Wid
		in.Age = now.Sub(p.Started).Seconds()
	}
	if size, res, err := s.r.Statm(p.Pid); err == nil {
		in.VMS = size * s.pageSize
		in.RSS = res * s.pageSize
		in.Mem = round(float64(in.RSS)/float64(s.memTotal)*100, 3)
	} else if errors.Is(err, ErrNoProcess) {
		return Info{}, err
	} else {
		in.na |= naMem
	}
	// A child sampled between fork and exec still shows its parent's argv;
	// comm changes with the exec, so the cached identity is dropped then.
	if m := s.marks[p.Pid]; !m.identAt.IsZero() && now.Sub(m.identAt) < identTTL && m.comm == st.Comm {
		in.Username, in.Cmdline = s.userLocked(m.uid), m.cmdline
	} else {
		uid, uidErr := s.r.realUID(p.Pid)
		if uidErr == nil {
			in.Username = s.userLocked(uid)
		} else if errors.Is(uidErr, ErrNoProcess) {
			return Info{}, uidErr
		} else {
			in.na |= naUser
		}
		var cmdErr error
		if in.Cmdline, cmdErr = s.r.cmdline(p.Pid); errors.Is(cmdErr, ErrNoProcess) {
			return Info{}, cmdErr
		} else if cmdErr != nil || in.Cmdline == "" {
			in.na |= naCmdline
		}
		// Cache only a complete identity: a worker sampled between fork
		// and exec has no argv yet, and its uid may be about to change.
		if uidErr == nil && cmdErr == nil && in.Cmdline != "" {
			m.identAt, m.comm, m.uid, m.cmdline = now, st.Comm, uid, in.Cmdline
			s.marks[p.Pid] = m
		}
	}
	if children {
		kids, err := s.r.children(p.Pid)
		if err != nil && errors.Is(err, ErrNoProcess) {
			return Info{}, err
		}
		in.Children = []Info{}
		for _, k := range kids {
			if c, err := s.sampleLocked(Process{Pid: k}, now, false); err == nil {
				in.Children = append(in.Children, c)
			}
		}
	}
	return in, nil
}

// cpuLocked returns the cpu percentage of pid since its baseline (0.0 for
// the first sample, as psutil's), rounded to 1 decimal as psutil does, and
// moves the baseline when at least cpuWindow has passed.
func (s *Sampler) cpuLocked(pid int, st procfs.Stat, now time.Time) float64 {
	pt := cpuPoint{at: now, ticks: st.Utime + st.Stime}
	m, ok := s.marks[pid]
	if !ok || m.start != st.StartTime {
		s.marks[pid] = procMark{start: st.StartTime, cur: pt}
		return 0
	}
	base := m.cur
	if now.Sub(m.cur.at) >= cpuWindow {
		m.prev, m.cur = m.cur, pt
		s.marks[pid] = m
	} else if !m.prev.at.IsZero() {
		base = m.prev
	}
	dt := now.Sub(base.at).Seconds()
	if dt <= 0 || pt.ticks < base.ticks {
		return 0
	}
	return round(float64(pt.ticks-base.ticks)/clockTicks/dt*100, 1)
}

// userLocked returns the name of uid, or the uid in decimal if it has
// none (as psutil). Lookups, failed ones included, are cached.
func (s *Sampler) userLocked(uid int) string {
	if name, ok := s.users[uid]; ok {
		return name
	}
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	s.users[uid] = name
	return name
}
