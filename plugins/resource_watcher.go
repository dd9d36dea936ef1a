package plugins

import (
	"context"
	"encoding/json"

	"github.com/ringmaster-dev/ringmaster/config"
)

// resourceWatcher samples one watcher every loop rate and restarts it after
// too many samples in a row out of bounds, as Circus's ResourceWatcher.
type resourceWatcher struct {
	e    env
	spec *config.ResourceWatcher
	st   *statsdClient

	// Owned by run: breaches in a row, for the watcher as a whole
	// (parentIndex) and, with process_children, for each child by pid.
	counts map[int]*breaches
}

// parentIndex is the watcher's own entry in counts (Circus's "parent").
const parentIndex = 0

// breaches counts the samples in a row that breached each bound.
type breaches struct {
	overCPU, underCPU, overMem, underMem, health int
}

func (b *breaches) max() int {
	return max(b.overCPU, b.underCPU, b.overMem, b.underMem, b.health)
}

// sample is what one look measured over a set of processes.
type sample struct {
	maxCPU, minCPU       float64 // percent
	maxMem, minMem       float64 // percent of the machine's memory
	maxMemAbs, minMemAbs float64 // bytes
}

func newResourceWatcher(e env, s *config.ResourceWatcher) (plugin, error) {
	st, err := newStatsd(s.Statsd)
	if err != nil {
		return nil, err
	}
	return &resourceWatcher{e: e, spec: s, st: st, counts: map[int]*breaches{}}, nil
}

func (p *resourceWatcher) run(ctx context.Context) {
	defer p.st.close()
	every(ctx, p.spec.LoopRate, p.lookAfter)
}

func (p *resourceWatcher) lookAfter(ctx context.Context) {
	props := map[string]any{"name": p.spec.Watcher}
	if p.spec.ProcessChildren {
		// Our stats samples children only when asked; Circus's always does.
		props["extended"] = true
	}
	r, err := p.e.cmds.call(ctx, "stats", props)
	if err != nil {
		if ctx.Err() == nil {
			p.st.increment("_resource_watcher." + p.spec.Watcher + ".error")
			p.e.log.Warn("stats failed", "watcher", p.spec.Watcher, "err", err)
		}
		return
	}
	var workers [][]field
	for _, proc := range members(r["info"]) {
		if info := members(proc.value); info != nil {
			workers = append(workers, info)
		}
	}
	if len(workers) == 0 {
		// Nothing runs (stopped, or between a stop and a start): no
		// sample, and no restart, which would start a stopped watcher.
		clear(p.counts)
		return
	}
	if p.judge(parentIndex, measure(workers)) {
		p.e.log.Warn("restarting: out of bounds for too long", "watcher", p.spec.Watcher, "samples", p.spec.MaxCount+1)
		p.e.cmds.cast(ctx, "restart", map[string]any{"name": p.spec.Watcher, "match": "simple"})
		return
	}
	if !p.spec.ProcessChildren {
		return
	}
	seen := map[int]bool{parentIndex: true}
	for _, w := range workers {
		pid, _ := number(get(w, "pid"))
		var children []json.RawMessage
		_ = json.Unmarshal(get(w, "children"), &children)
		for _, c := range children {
			info := members(c)
			cpid, ok := number(get(info, "pid"))
			if info == nil || !ok || cpid.v <= 0 {
				continue
			}
			child := int(cpid.v)
			seen[child] = true
			if p.judge(child, measure([][]field{info})) {
				p.e.log.Warn("signalling a child: out of bounds for too long", "watcher", p.spec.Watcher,
					"pid", int(pid.v), "childpid", child, "signal", p.spec.ChildSignal)
				p.e.cmds.cast(ctx, "signal", map[string]any{"name": p.spec.Watcher, "pid": int(pid.v),
					"childpid": child, "signum": int(p.spec.ChildSignal)})
				delete(p.counts, child)
			}
		}
	}
	for idx := range p.counts {
		if !seen[idx] {
			delete(p.counts, idx) // a child gone
		}
	}
}

// measure reads the extremes of processes' cpu and memory, taking what could
// not be read ("N/A") as Circus does: 100 % of cpu and memory, 0 bytes.
func measure(procs [][]field) sample {
	var s sample
	for i, info := range procs {
		cpu, mem, abs := 100.0, 100.0, 0.0
		if v, ok := number(get(info, "cpu")); ok {
			cpu = v.v
		}
		if v, ok := number(get(info, "mem")); ok {
			mem = v.v
		}
		if b, ok := humanBytes(get(info, "mem_info1")); ok {
			abs = float64(b)
		}
		if i == 0 {
			s = sample{cpu, cpu, mem, mem, abs, abs}
			continue
		}
		s.maxCPU, s.minCPU = max(s.maxCPU, cpu), min(s.minCPU, cpu)
		s.maxMem, s.minMem = max(s.maxMem, mem), min(s.minMem, mem)
		s.maxMemAbs, s.minMemAbs = max(s.maxMemAbs, abs), min(s.minMemAbs, abs)
	}
	return s
}

// judge counts the bounds s breaches at index and reports whether one has
// been breached more than max_count samples in a row (then the count
// starts again), as Circus's _process_index does, statsd counters included.
func (p *resourceWatcher) judge(index int, s sample) bool {
	b := p.counts[index]
	if b == nil {
		b = &breaches{}
		p.counts[index] = b
	}
	spec, metric := p.spec, "_resource_watcher."+p.spec.Watcher+"."
	count := func(n *int, breach bool, what string) {
		if !breach {
			*n = 0
			return
		}
		p.st.increment(metric + what)
		*n++
	}
	count(&b.overCPU, spec.MaxCPU.Set && s.maxCPU > spec.MaxCPU.Value, "over_cpu")
	count(&b.underCPU, spec.MinCPU.Set && s.minCPU <= spec.MinCPU.Value, "under_cpu")
	count(&b.overMem, spec.MaxMem.Set && pick(spec.MaxMem, s.maxMem, s.maxMemAbs) > spec.MaxMem.Value, "over_memory")
	count(&b.underMem, spec.MinMem.Set && pick(spec.MinMem, s.minMem, s.minMemAbs) < spec.MinMem.Value, "under_memory")
	count(&b.health, spec.HealthThreshold > 0 && (s.maxCPU+s.maxMem)/2 > spec.HealthThreshold, "over_health")
	if b.max() <= spec.MaxCount {
		return false
	}
	p.st.increment(metric + "restarting")
	*b = breaches{}
	return true
}

// pick is the measure a memory bound compares: bytes or percent.
func pick(b config.Bound, percent, bytes float64) float64 {
	if b.Bytes {
		return bytes
	}
	return percent
}
