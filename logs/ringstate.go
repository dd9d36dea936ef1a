package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ringmaster-dev/ringmaster/internal/handover"
)

// RingState is the recent output an Output keeps (what `circusctl tail`,
// `circusctl logs` and the console show), carried across an upgrade in
// place so that they show the same after it, and so that a client
// following the output (its since) goes on where it was.
//
// The kept lines themselves are not in the JSON: they are up to 64 KiB of
// each worker's output, and a thousand workers' would cost a hand-over
// far more to encode and decode (measured: about 15 ms of cpu per MiB, in
// base64 and out) than to copy into a memfd and back. The records go into
// a memfd named by FD, close-on-exec cleared; the JSON says whose they
// are.
type RingState struct {
	// Seq is the number of the last line read.
	Seq uint64 `json:"seq"`
	// FD holds the records of every worker, one after the other, in the
	// order of Workers; -1 when there are none.
	FD int `json:"fd"`
	// Workers are those running, then the exited ones whose output is
	// kept, in the order their output ended.
	Workers []WorkerRing `json:"workers,omitempty"`
}

// WorkerRing is one worker's kept output.
type WorkerRing struct {
	Pid    int  `json:"pid"`
	Exited bool `json:"exited,omitempty"`
	// Size is the length of its records in the memfd. Each record is one
	// read's lines: uvarint Seq of its first line, one byte Stream,
	// varint time in Unix nanoseconds, uvarint length, then that many
	// bytes of whole lines.
	Size int `json:"size"`
}

// RingState writes the output kept into a memfd for the next image, once
// Detach has stopped the readers (so that it holds every line read), and
// fails without a Detach. Resume closes the memfd (the exec failed);
// RestoreRing in the next image reads and closes it.
func (o *Output) RingState() (RingState, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.hand.detached {
		return RingState{FD: -1}, errors.New("kept output: taken without a Detach")
	}
	if o.hand.ringFD >= 0 {
		unix.Close(o.hand.ringFD)
		o.hand.ringFD = -1
	}
	st, err := o.ring.state()
	if err == nil && st.FD >= 0 {
		if err = handover.KeepFD(st.FD); err != nil {
			unix.Close(st.FD)
		}
	}
	if err != nil {
		return RingState{FD: -1}, fmt.Errorf("kept output: %w", err)
	}
	o.hand.ringFD = st.FD
	return st, nil
}

// RestoreRing puts back the output kept by an earlier image (its
// RingState), before Adopt starts reading, and closes st.FD; workers it
// names as running whose pipes Adopt does not take are then taken as
// exited. It fails on a state it cannot read, and when this Output has
// read anything already.
func (o *Output) RestoreRing(st RingState) error {
	if st.FD < 0 {
		return o.ring.restore(st, nil)
	}
	if st.FD < 3 {
		// Not ours to close.
		return fmt.Errorf("kept output: fd %d is not a memfd", st.FD)
	}
	b, err := readFD(st.FD)
	unix.Close(st.FD)
	if err != nil {
		return fmt.Errorf("kept output: fd %d: %w", st.FD, err)
	}
	return o.ring.restore(st, b)
}

// readFD reads a memfd from its start.
func readFD(fd int) ([]byte, error) {
	var sb unix.Stat_t
	if err := unix.Fstat(fd, &sb); err != nil {
		return nil, os.NewSyscallError("fstat", err)
	}
	if sb.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fmt.Errorf("not a memfd (mode %#o)", sb.Mode&unix.S_IFMT)
	}
	b := make([]byte, sb.Size)
	for off := 0; off < len(b); {
		n, err := unix.Pread(fd, b[off:], int64(off))
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return nil, os.NewSyscallError("pread", err)
		case n == 0:
			return nil, errors.New("shorter than its size")
		}
		off += n
	}
	return b, nil
}

// state writes the records into a new memfd.
func (r *ring) state() (RingState, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RingState{Seq: r.seq, FD: -1}
	if len(r.workers) == 0 {
		return st, nil
	}
	fd, err := unix.MemfdCreate("ringmaster-kept-output", unix.MFD_CLOEXEC)
	if err != nil {
		return st, os.NewSyscallError("memfd_create", err)
	}
	var live []int
	for pid, w := range r.workers {
		if !w.exited {
			live = append(live, pid)
		}
	}
	slices.Sort(live)
	var b []byte
	for _, pid := range append(live, r.exited...) {
		w := r.workers[pid]
		b = b[:0]
		for _, rec := range w.recs {
			b = binary.AppendUvarint(b, rec.seq)
			b = append(b, byte(rec.stream))
			b = binary.AppendVarint(b, rec.t.UnixNano())
			b = binary.AppendUvarint(b, uint64(len(rec.data)))
			b = append(b, rec.data...)
		}
		if err := writeAll(fd, b); err != nil {
			unix.Close(fd)
			return st, err
		}
		st.Workers = append(st.Workers, WorkerRing{Pid: pid, Exited: w.exited, Size: len(b)})
	}
	st.FD = fd
	return st, nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		b = b[n:]
	}
	return nil
}

// restore puts back st, whose records are b.
func (r *ring) restore(st RingState, b []byte) error {
	workers := map[int]*workerRing{}
	var exited []int
	for _, wr := range st.Workers {
		if workers[wr.Pid] != nil {
			return fmt.Errorf("kept output: worker %d named twice", wr.Pid)
		}
		if wr.Size < 0 || wr.Size > len(b) {
			return fmt.Errorf("kept output of worker %d: %d bytes of records, %d left", wr.Pid, wr.Size, len(b))
		}
		recs, size, err := unpackRecords(b[:wr.Size], st.Seq)
		if err != nil {
			return fmt.Errorf("kept output of worker %d: %w", wr.Pid, err)
		}
		b = b[wr.Size:]
		workers[wr.Pid] = &workerRing{recs: recs, size: size, exited: wr.Exited}
		if wr.Exited {
			exited = append(exited, wr.Pid)
		}
	}
	if len(b) > 0 {
		return fmt.Errorf("kept output: %d bytes of records no worker claims", len(b))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seq != 0 || len(r.workers) != 0 {
		return errors.New("kept output: restored after output was read")
	}
	r.seq, r.workers, r.exited = st.Seq, workers, exited
	return nil
}

// unpackRecords reads WorkerRing.Records, whose lines are numbered up to
// last.
func unpackRecords(b []byte, last uint64) ([]record, int, error) {
	var recs []record
	size := 0
	for len(b) > 0 {
		seq, n := binary.Uvarint(b)
		if n <= 0 || len(b) < n+1 {
			return nil, 0, errors.New("truncated record")
		}
		b = b[n:]
		s := Stream(b[0])
		b = b[1:]
		t, n := binary.Varint(b)
		if n <= 0 {
			return nil, 0, errors.New("truncated record")
		}
		b = b[n:]
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return nil, 0, errors.New("truncated record")
		}
		data := b[n : n+int(l)]
		b = b[n+int(l):]
		switch {
		case s != Stdout && s != Stderr:
			return nil, 0, fmt.Errorf("record of line %d: no stream %d", seq, s)
		case len(data) == 0 || data[len(data)-1] != '\n':
			return nil, 0, fmt.Errorf("record of line %d: not whole lines", seq)
		case seq == 0 || seq > last:
			return nil, 0, fmt.Errorf("record of line %d: past the last line read, %d", seq, last)
		}
		recs = append(recs, record{seq: seq, stream: s, t: time.Unix(0, t), data: data})
		size += len(data)
	}
	return recs, size, nil
}

// settle takes workers restored as running whose pipes nobody adopted for
// exited, so that they give up their place in time, as others do.
func (r *ring) settle() {
	r.mu.Lock()
	defer r.mu.Unlock()
	var gone []int
	for pid, w := range r.workers {
		if !w.exited && w.open == 0 {
			gone = append(gone, pid)
		}
	}
	slices.Sort(gone)
	for _, pid := range gone {
		r.retire(pid, r.workers[pid])
	}
}
