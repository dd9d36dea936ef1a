package logs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"
)

// RingState is the recent output an Output keeps (what `circusctl tail`,
// `circusctl logs` and the console show), carried across an upgrade in
// place so that they show the same after it, and so that a client
// following the output (its since) goes on where it was.
//
// Each worker's records are packed into one byte string rather than one
// JSON object per record: a busy worker's 64 KiB are hundreds of reads,
// and a thousand such workers would otherwise cost the hand-over a second
// of encoding; packed, it costs a copy and base64.
type RingState struct {
	// Seq is the number of the last line read.
	Seq uint64 `json:"seq"`
	// Workers are those running, then the exited ones whose output is
	// kept, in the order their output ended.
	Workers []WorkerRing `json:"workers,omitempty"`
}

// WorkerRing is one worker's kept output.
type WorkerRing struct {
	Pid    int  `json:"pid"`
	Exited bool `json:"exited,omitempty"`
	// Records packs each read's lines: uvarint Seq of its first line,
	// one byte Stream, varint time in Unix nanoseconds, uvarint length,
	// then that many bytes of whole lines.
	Records []byte `json:"records,omitempty"`
}

// RingState returns the output kept. Taken after Detach, it holds every
// line read: nothing is read until Resume.
func (o *Output) RingState() RingState { return o.ring.state() }

// RestoreRing puts back the output kept by an earlier image (its
// RingState), before Adopt starts reading; workers it names as running
// whose pipes Adopt does not take are then taken as exited. It fails on a
// state it cannot read, and when this Output has read anything already.
func (o *Output) RestoreRing(st RingState) error { return o.ring.restore(st) }

func (r *ring) state() RingState {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RingState{Seq: r.seq}
	var live []int
	for pid, w := range r.workers {
		if !w.exited {
			live = append(live, pid)
		}
	}
	slices.Sort(live)
	for _, pid := range append(live, r.exited...) {
		w := r.workers[pid]
		wr := WorkerRing{Pid: pid, Exited: w.exited}
		b := make([]byte, 0, w.size+len(w.recs)*(2*binary.MaxVarintLen64+1))
		for _, rec := range w.recs {
			b = binary.AppendUvarint(b, rec.seq)
			b = append(b, byte(rec.stream))
			b = binary.AppendVarint(b, rec.t.UnixNano())
			b = binary.AppendUvarint(b, uint64(len(rec.data)))
			b = append(b, rec.data...)
		}
		wr.Records = b
		st.Workers = append(st.Workers, wr)
	}
	return st
}

func (r *ring) restore(st RingState) error {
	workers := map[int]*workerRing{}
	var exited []int
	for _, wr := range st.Workers {
		if workers[wr.Pid] != nil {
			return fmt.Errorf("kept output: worker %d named twice", wr.Pid)
		}
		recs, size, err := unpackRecords(wr.Records, st.Seq)
		if err != nil {
			return fmt.Errorf("kept output of worker %d: %w", wr.Pid, err)
		}
		workers[wr.Pid] = &workerRing{recs: recs, size: size, exited: wr.Exited}
		if wr.Exited {
			exited = append(exited, wr.Pid)
		}
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
