package bench

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCycleQuick runs a few cycles. It checks the shape and the
// sense of the output only: timing never fails a test.
func TestCycleQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	var stdout, stderr bytes.Buffer
	opts := &Options{JSON: true, Cycles: 3, Dir: t.TempDir()}
	if err := RunCycle(t.Context(), opts, &stdout, &stderr); err != nil {
		t.Fatalf("RunCycle: %v\nstderr: %s", err, stderr.String())
	}
	got := decodeOneObject(t, stdout.Bytes())
	for _, f := range []string{"cycle_ms_p50", "cycle_ms_p90", "cycle_ms_p99", "fsync_per_s", "transactions_per_cycle", "prompt_bytes_first_cycle", "prompt_bytes_last_cycle"} {
		if v, ok := got[f].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, got[f])
		}
	}
	for _, f := range []string{"overhead_ms_p50", "overhead_ms_p90", "overhead_ms_p99", "model_ms_p50", "overhead_ms_p50_first_tenth", "overhead_ms_p50_last_tenth", "overhead_p50_vs_target"} {
		if v, ok := got[f].(float64); !ok || v < 0 {
			t.Errorf("%s = %v, want a number ≥ 0", f, got[f])
		}
	}
	if o, c := got["overhead_ms_p50"].(float64), got["cycle_ms_p50"].(float64); o > c {
		t.Errorf("overhead_ms_p50 %v exceeds cycle_ms_p50 %v", o, c)
	}
	if got["cycles"] != 3.0 {
		t.Errorf("cycles = %v, want 3", got["cycles"])
	}
	// The scripted BRICK plans two sub-questions: a plan, two answers, a method.
	if got["model_calls_per_cycle"] != 4.0 {
		t.Errorf("model_calls_per_cycle = %v, want 4", got["model_calls_per_cycle"])
	}
	if v, _ := got["transactions_per_cycle"].(float64); v < 5 {
		t.Errorf("transactions_per_cycle = %v, want at least one per transition", v)
	}
	if txs, _ := got["last_cycle_transactions"].([]any); len(txs) == 0 || !strings.Contains(txs[len(txs)-1].(string), "COMPLETE") {
		t.Errorf("last_cycle_transactions = %v, want them ending with the install", got["last_cycle_transactions"])
	}
	states, _ := got["state_ms_p50"].(map[string]any)
	for _, s := range cycleBenchStates {
		if v, ok := states[s].(float64); !ok || v < 0 {
			t.Errorf("state_ms_p50[%s] = %v, want a number ≥ 0", s, states[s])
		}
	}
	met, _ := got["targets_met"].(map[string]any)
	if _, ok := met["overhead_ms_p50"].(bool); !ok {
		t.Errorf("targets_met[overhead_ms_p50] = %v, want a verdict", met["overhead_ms_p50"])
	}
	if notes, ok := got["notes"].([]any); !ok || len(notes) == 0 {
		t.Errorf("notes = %v, want some", got["notes"])
	}
	if !strings.Contains(stderr.String(), "bench: measuring 3 cycles") {
		t.Errorf("stderr shows no progress:\n%s", stderr.String())
	}
}

func TestCycleTable(t *testing.T) {
	ms := time.Millisecond
	var samples []cycleSample
	for i := range 10 {
		samples = append(samples, cycleSample{
			wall: time.Duration(4+i) * ms, model: ms / 10, calls: 4, txs: 12, promptBytes: 1000 + i,
			states: map[string]time.Duration{"DELEGATING": 2 * ms},
		})
	}
	r := &cycleBench{Cycles: len(samples), FsyncPerS: 2000, Targets: cycleTargets, LastCycleTransactions: []string{"cycle 9: VALIDATING → COMPLETE"}}
	r.conclude(samples)
	if r.OverheadMsP50 != 7.9 || r.TransactionsPerCycle != 12 || r.FsyncFloorMs != 6 || r.TargetsMet["overhead_ms_p50"] {
		t.Errorf("concluded %+v", r)
	}
	var out bytes.Buffer
	if err := writeCycleBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"7.90 ms", "in DELEGATING", "12.0 transactions", "6.00 ms of fsync", "target < 5 ms: MISSED", "VALIDATING → COMPLETE", "note: each cycle"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkCycle is bench cycle's cycle, one at a time on one image
// after the warm-up: go test -bench Cycle -benchmem
// -cpuprofile/-memprofile profiles a cycle alone. Each cycle teaches
// genesis one more method, so a longer run measures bigger receivers.
func BenchmarkCycle(b *testing.B) {
	ctx := b.Context()
	cb := &cycleBencher{log: io.Discard}
	if err := cb.open(ctx, filepath.Join(b.TempDir(), "cycle.db")); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cb.u.Close() })
	i := 0
	for i < benchCycleWarmup {
		i++
		if _, err := cb.cycle(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	var overhead time.Duration
	cpu := processCPU()
	for b.Loop() {
		i++
		s, err := cb.cycle(ctx, i)
		if err != nil {
			b.Fatal(err)
		}
		overhead += s.overhead()
	}
	// CPU time says more than wall time on a machine others load; it
	// counts the unmeasured checks after each cycle, and the collector.
	cpu = processCPU() - cpu
	b.ReportMetric(float64(overhead.Microseconds())/1000/float64(b.N), "overhead-ms/op")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}
