package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"batos/internal/cycle"
	"batos/internal/image"
	"batos/internal/llm"
	"batos/internal/mind"
	"batos/internal/store"
	"batos/internal/uvm"
	"batos/internal/vm"
)

// benchCycleWarmup cycles run first, unmeasured.
const benchCycleWarmup = 5

// benchCycleSelector is the missing selector of cycle i.
func benchCycleSelector(i int) string { return fmt.Sprintf("display_yourself_%d", i) }

// cycleBench is the outcome of "bench cycle"; its JSON is the -json output.
type cycleBench struct {
	Dir          string `json:"dir"`
	Cycles       int    `json:"cycles"`
	WarmupCycles int    `json:"warmup_cycles"`

	OverheadMsP50 float64 `json:"overhead_ms_p50"`
	OverheadMsP90 float64 `json:"overhead_ms_p90"`
	OverheadMsP99 float64 `json:"overhead_ms_p99"`
	CycleMsP50    float64 `json:"cycle_ms_p50"`
	CycleMsP90    float64 `json:"cycle_ms_p90"`
	CycleMsP99    float64 `json:"cycle_ms_p99"`
	ModelMsP50    float64 `json:"model_ms_p50"`
	// StateMsP50 is the p50 of the time spent in each state, from the
	// transition into it to the transition out of it as published;
	// "start" runs from Start's call to IDLE, "wait" from COMPLETE to
	// Wait's return.
	StateMsP50 map[string]float64 `json:"state_ms_p50"`
	// The overhead's p50 over the first and the last tenth of the
	// cycles: genesis gains a method per cycle, and prompts show them all.
	OverheadMsP50FirstTenth float64 `json:"overhead_ms_p50_first_tenth"`
	OverheadMsP50LastTenth  float64 `json:"overhead_ms_p50_last_tenth"`

	// PromptBytes* are the size of the prompts recorded in the first and
	// the last measured cycle.
	PromptBytesFirstCycle int `json:"prompt_bytes_first_cycle"`
	PromptBytesLastCycle  int `json:"prompt_bytes_last_cycle"`

	ModelCallsPerCycle   float64 `json:"model_calls_per_cycle"`
	TransactionsPerCycle float64 `json:"transactions_per_cycle"`
	// LastCycleTransactions describes the commits of the last cycle,
	// oldest first.
	LastCycleTransactions []string `json:"last_cycle_transactions"`

	FsyncPerS float64 `json:"fsync_per_s"`
	// FsyncFloorMs is transactions_per_cycle durable commits at the disk's
	// fsync rate: what the commits cost at the very least.
	FsyncFloorMs     float64 `json:"fsync_floor_ms"`
	OverheadVsTarget float64 `json:"overhead_p50_vs_target"`

	Targets    cycleBenchTargets `json:"targets"`
	TargetsMet map[string]bool   `json:"targets_met"`
	Notes      []string          `json:"notes"`
}

// cycleBenchTargets are what a cycle is meant to cost beyond its model.
type cycleBenchTargets struct {
	OverheadMsP50 float64 `json:"overhead_ms_p50_max"`
}

var cycleTargets = cycleBenchTargets{OverheadMsP50: 5}

// RunCycle measures what the cognitive cycle itself costs: opts.Cycles
// complete cycles, one at a time, each teaching genesis a selector it
// lacks, on an image in a temporary directory under opts.Dir, with a mind
// whose scripted model answers at once, in this process. It prints the
// outcome to stdout and its progress to log.
func RunCycle(ctx context.Context, opts *Options, stdout, log io.Writer) error {
	opts = opts.orDefault()
	n := opts.Cycles
	if n == 0 {
		n = DefaultCycles
	}
	if n < 0 {
		return fmt.Errorf("bench: %d cycles to measure", n)
	}
	res, err := benchCycle(ctx, opts.dir(), n, opts.CPUProfile, log)
	if err != nil {
		return err
	}
	if opts.JSON {
		return writeJSON(stdout, res)
	}
	return writeCycleBenchTable(stdout, res)
}

// cycleSample is one measured cycle.
type cycleSample struct {
	wall, model time.Duration
	calls, txs  int
	promptBytes int
	states      map[string]time.Duration // see cycleBench.StateMsP50
}

func (s cycleSample) overhead() time.Duration { return s.wall - s.model }

// cycleBencher runs the cycles of bench cycle on one image.
type cycleBencher struct {
	log     io.Writer
	u       *uvm.UVM
	model   *timedModel
	genesis store.OID
	lastTxs []string

	mu          sync.Mutex
	transitions []transition // of the cycle being measured
}

// transition is a published transition, and when it came.
type transition struct {
	state string
	at    time.Time
}

// event records transitions; it is the UVM's event sink.
func (b *cycleBencher) event(topic string, payload map[string]any) {
	if topic != "cycle.transition" {
		return
	}
	state, _ := payload["state"].(string)
	b.mu.Lock()
	b.transitions = append(b.transitions, transition{state, time.Now()})
	b.mu.Unlock()
}

// states splits a cycle's wall time, start to end, by the transitions
// published meanwhile.
func (b *cycleBencher) states(start, end time.Time) map[string]time.Duration {
	b.mu.Lock()
	ts := b.transitions
	b.transitions = nil
	b.mu.Unlock()
	out := map[string]time.Duration{}
	name, since := "start", start
	for _, t := range ts {
		out[name] += t.at.Sub(since)
		name, since = t.state, t.at
	}
	if name == cycle.Complete.String() {
		name = "wait"
	}
	out[name] += end.Sub(since)
	return out
}

// benchCycle measures n cycles on an image in a fresh directory under
// parent, removed afterwards, printing progress to log. With profile set,
// the measured cycles are CPU-profiled into it.
func benchCycle(ctx context.Context, parent string, n int, profile string, log io.Writer) (*cycleBench, error) {
	dir, err := os.MkdirTemp(parent, "batos-bench-cycle-")
	if err != nil {
		return nil, fmt.Errorf("make benchmark directory: %w", err)
	}
	defer os.RemoveAll(dir)
	res := &cycleBench{Dir: dir, Cycles: n, WarmupCycles: benchCycleWarmup, Targets: cycleTargets}
	b := &cycleBencher{log: log}
	b.phase("working in %s", dir)
	b.phase("fsync: appending 4 KiB + fsync for 200ms")
	if res.FsyncPerS, err = fsyncRate(ctx, dir, 200*time.Millisecond); err != nil {
		return nil, err
	}
	b.phase("fsync: %.0f/s", res.FsyncPerS)
	if err := b.open(ctx, filepath.Join(dir, "cycle.db")); err != nil {
		return nil, err
	}
	defer b.u.Close()
	b.phase("warm-up: %d cycles", benchCycleWarmup)
	for i := 1; i <= benchCycleWarmup; i++ {
		if _, err := b.cycle(ctx, i); err != nil {
			return nil, err
		}
	}
	if profile != "" {
		stop, err := startCPUProfile(profile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	b.phase("measuring %d cycles, one at a time", n)
	samples := make([]cycleSample, 0, n)
	for i := benchCycleWarmup + 1; i <= benchCycleWarmup+n; i++ {
		s, err := b.cycle(ctx, i)
		if err != nil {
			return nil, err
		}
		samples = append(samples, s)
	}
	res.LastCycleTransactions = b.lastTxs
	res.conclude(samples)
	b.phase("overhead p50 %.2f ms, cycle p50 %.2f ms, %.1f transactions per cycle", res.OverheadMsP50, res.CycleMsP50, res.TransactionsPerCycle)
	b.phase("done; removing %s", dir)
	return res, nil
}

func (b *cycleBencher) phase(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// open opens the image with the scripted mind and finds genesis.
func (b *cycleBencher) open(ctx context.Context, path string) error {
	b.model = &timedModel{Model: scriptedModel{}}
	server := &mind.Server{API: mind.APIOpenAI, DefaultModel: "scripted", Client: b.model}
	u, _, err := uvm.Open(ctx, path, &uvm.Options{Mind: server, Events: b.event})
	if err != nil {
		return err
	}
	err = u.DB().View(ctx, func(tx *image.Tx) (err error) {
		b.genesis, err = tx.Resolve("genesis")
		return err
	})
	if err != nil {
		u.Close()
		return err
	}
	b.u = u
	return nil
}

// cycle runs cycle i from Start to COMPLETE, then checks that genesis
// answers the learned selector (unmeasured).
func (b *cycleBencher) cycle(ctx context.Context, i int) (cycleSample, error) {
	sel := benchCycleSelector(i)
	machine := b.u.Cycles()
	before := b.u.Store().LastTID()
	b.model.take()
	b.states(time.Time{}, time.Time{}) // forget the previous send's
	start := time.Now()
	id, _, err := machine.Start(ctx, cycle.Mission{Message: vm.Message{Receiver: b.genesis, Selector: sel}}, false)
	if err != nil {
		return cycleSample{}, err
	}
	c, err := machine.Wait(ctx, id)
	end := time.Now()
	s := cycleSample{wall: end.Sub(start), states: b.states(start, end)}
	s.model, s.calls = b.model.take()
	if err != nil {
		return s, fmt.Errorf("cycle %d for %s: %w", id, sel, err)
	}
	if c.State != cycle.Complete {
		return s, fmt.Errorf("cycle %d for %s ended %s: %s", id, sel, c.State, c.Reason)
	}
	// Prompts live in objects of their own; read them after the timing.
	if err := b.u.DB().View(ctx, func(tx *image.Tx) error { return cycle.LoadPrompts(tx, c) }); err != nil {
		return s, err
	}
	for _, st := range c.Steps {
		for _, m := range st.Prompt {
			s.promptBytes += len(m.Content)
		}
	}
	if s.txs, err = b.countCommits(ctx, before); err != nil {
		return s, err
	}
	res, err := b.u.Send(ctx, "genesis", sel, nil, nil)
	if err != nil {
		return s, fmt.Errorf("send the learned %s: %w", sel, err)
	}
	if res.Repr != `"I am genesis"` {
		return s, fmt.Errorf("the learned %s answered %s, want \"I am genesis\"", sel, res.Repr)
	}
	return s, nil
}

// countCommits counts the transactions committed after before, and keeps
// their descriptions.
func (b *cycleBencher) countCommits(ctx context.Context, before store.TID) (int, error) {
	log, err := b.u.Store().Log(ctx, store.LogQuery{Limit: 1000})
	if err != nil {
		return 0, err
	}
	b.lastTxs = b.lastTxs[:0]
	for _, tx := range log {
		if tx.TID <= before {
			break
		}
		b.lastTxs = append(b.lastTxs, tx.Description)
	}
	slices.Reverse(b.lastTxs)
	return len(b.lastTxs), nil
}

// conclude fills in the figures, the verdict and the notes.
func (r *cycleBench) conclude(samples []cycleSample) {
	pick := func(f func(cycleSample) time.Duration) []time.Duration {
		out := make([]time.Duration, len(samples))
		for i, s := range samples {
			out[i] = f(s)
		}
		return out
	}
	overhead := pick(cycleSample.overhead)
	wall := pick(func(s cycleSample) time.Duration { return s.wall })
	model := pick(func(s cycleSample) time.Duration { return s.model })
	tenth := max(1, len(samples)/10)
	r.OverheadMsP50FirstTenth = quantileMs(overhead[:tenth], 0.5)
	r.OverheadMsP50LastTenth = quantileMs(overhead[len(overhead)-tenth:], 0.5)
	r.OverheadMsP50, r.OverheadMsP90, r.OverheadMsP99 = quantileMs(overhead, 0.5), quantileMs(overhead, 0.9), quantileMs(overhead, 0.99)
	r.CycleMsP50, r.CycleMsP90, r.CycleMsP99 = quantileMs(wall, 0.5), quantileMs(wall, 0.9), quantileMs(wall, 0.99)
	r.ModelMsP50 = quantileMs(model, 0.5)
	r.StateMsP50 = map[string]float64{}
	for _, name := range cycleBenchStates {
		r.StateMsP50[name] = quantileMs(pick(func(s cycleSample) time.Duration { return s.states[name] }), 0.5)
	}
	r.PromptBytesFirstCycle, r.PromptBytesLastCycle = samples[0].promptBytes, samples[len(samples)-1].promptBytes
	calls, txs := 0, 0
	for _, s := range samples {
		calls += s.calls
		txs += s.txs
	}
	r.ModelCallsPerCycle = float64(calls) / float64(len(samples))
	r.TransactionsPerCycle = float64(txs) / float64(len(samples))
	if r.FsyncPerS > 0 {
		r.FsyncFloorMs = r.TransactionsPerCycle / r.FsyncPerS * 1000
	}
	r.OverheadVsTarget = r.OverheadMsP50 / r.Targets.OverheadMsP50
	r.TargetsMet = map[string]bool{"overhead_ms_p50": r.OverheadMsP50 < r.Targets.OverheadMsP50}
	r.Notes = append(r.Notes,
		fmt.Sprintf("each cycle runs alone (after %d unmeasured warm-up cycles), from cycle.Machine.Start to cycle.Machine.Wait returning it COMPLETE; a send that learns adds two short send transactions around this, not measured", r.WarmupCycles),
		"model time is the time during which at least one chat call of the scripted model was running (BABS and ALFRED are asked at once, so their calls overlap); the mind's own work around a call (loading the persona, recording the call's usage in the image) counts as overhead",
		"transactions_per_cycle counts the commits in the store's log during a cycle, each durable (fsync); fsync_floor_ms is that many fsyncs at the rate this disk showed",
		"genesis gains a method per cycle and BRICK's and ROBIN's prompts show the receiver's methods with their source, so later cycles build and record bigger prompts: compare overhead_ms_p50_first_tenth and _last_tenth",
	)
}

// cycleBenchStates name the parts of a cycle's wall time, in order.
var cycleBenchStates = []string{"start", "IDLE", "DECOMPOSING", "DELEGATING", "SYNTHESIZING", "VALIDATING", "wait"}

// quantileMs is the q-quantile of ds (nearest rank), in milliseconds.
func quantileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return benchMs(s[min(max(i, 0), len(s)-1)])
}

// writeCycleBenchTable prints the figures for people, with the target.
func writeCycleBenchTable(w io.Writer, r *cycleBench) error {
	verdict := "MISSED"
	if r.TargetsMet["overhead_ms_p50"] {
		verdict = "met"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "measure (%d cycles)\tp50\tp90\tp99\n", r.Cycles)
	fmt.Fprintf(tw, "overhead (wall − model)\t%.2f ms\t%.2f ms\t%.2f ms\n", r.OverheadMsP50, r.OverheadMsP90, r.OverheadMsP99)
	fmt.Fprintf(tw, "cycle wall time\t%.2f ms\t%.2f ms\t%.2f ms\n", r.CycleMsP50, r.CycleMsP90, r.CycleMsP99)
	fmt.Fprintf(tw, "inside the model\t%.2f ms\t\t\n", r.ModelMsP50)
	fmt.Fprintf(tw, "overhead, first / last tenth\t%.2f / %.2f ms\t\t\n", r.OverheadMsP50FirstTenth, r.OverheadMsP50LastTenth)
	for _, name := range cycleBenchStates {
		fmt.Fprintf(tw, "  in %s\t%.2f ms\t\t\n", name, r.StateMsP50[name])
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\n%.1f transactions and %.1f model calls per cycle; disk %.0f fsync/s, so %.2f ms of fsync per cycle at least\n",
		r.TransactionsPerCycle, r.ModelCallsPerCycle, r.FsyncPerS, r.FsyncFloorMs)
	fmt.Fprintf(w, "prompts recorded: %d bytes in the first cycle, %d in the last\n", r.PromptBytesFirstCycle, r.PromptBytesLastCycle)
	fmt.Fprintf(w, "overhead p50 %.2f ms = %.2f× the target < %.0f ms: %s\n", r.OverheadMsP50, r.OverheadVsTarget, r.Targets.OverheadMsP50, verdict)
	if len(r.LastCycleTransactions) > 0 {
		fmt.Fprintf(w, "\nthe last cycle's transactions:\n  %s\n", strings.Join(r.LastCycleTransactions, "\n  "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "\nnote: %s", n)
	}
	_, err := fmt.Fprintln(w)
	return err
}

// timedModel is an llm.Model that measures the time during which at
// least one of its chat calls runs. It is safe for concurrent use.
type timedModel struct {
	llm.Model

	mu       sync.Mutex
	inflight int
	since    time.Time
	busy     time.Duration
	calls    int
}

// Chat implements llm.Model.
func (m *timedModel) Chat(ctx context.Context, req *llm.ChatRequest) (*llm.ChatResponse, error) {
	m.mu.Lock()
	if m.inflight == 0 {
		m.since = time.Now()
	}
	m.inflight++
	m.calls++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.inflight--
		if m.inflight == 0 {
			m.busy += time.Since(m.since)
		}
		m.mu.Unlock()
	}()
	return m.Model.Chat(ctx, req)
}

// take returns the busy time and the calls since the last take.
func (m *timedModel) take() (busy time.Duration, calls int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	busy, calls = m.busy, m.calls
	m.busy, m.calls = 0, 0
	return busy, calls
}
