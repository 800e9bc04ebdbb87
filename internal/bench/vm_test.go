package bench

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/image"
	"batos/internal/vm"
)

// benchVMFields are the figures bench vm must report, each positive.
var benchVMFields = []string{
	"fsync_per_s", "send_ro_per_s", "send_ro_one_core_per_s",
	"send_ro_view_one_core_per_s", "send_ro_parallel_per_s",
	"send_ro_allocs_per_send", "send_ro_bytes_per_send",
	"send_rw_per_s", "send_rw_vs_fsync",
	"send_ro_one_core_telemetry_per_s", "send_ro_one_core_no_telemetry_per_s",
}

// TestVMQuick runs the benchmark for a fraction of a second per phase.
// It checks the shape of the output only: timing never fails a test.
func TestVMQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	var stdout, stderr bytes.Buffer
	opts := &Options{Quick: true, JSON: true, Dir: t.TempDir()}
	if err := RunVM(t.Context(), opts, &stdout, &stderr); err != nil {
		t.Fatalf("RunVM: %v\nstderr: %s", err, stderr.String())
	}
	got := decodeOneObject(t, stdout.Bytes())
	for _, f := range benchVMFields {
		v, ok := got[f].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, got[f])
		}
	}
	// The overhead may come out negative in a noisy quick run: a number.
	if _, ok := got["telemetry_overhead_pct"].(float64); !ok {
		t.Errorf("telemetry_overhead_pct = %v, want a number", got["telemetry_overhead_pct"])
	}
	if v, ok := got["conflicts_retried"].(float64); !ok || v < 0 {
		t.Errorf("conflicts_retried = %v, want a count", got["conflicts_retried"])
	}
	for _, f := range []string{"sizes", "targets", "targets_met"} {
		if m, ok := got[f].(map[string]any); !ok || len(m) == 0 {
			t.Errorf("%s = %v, want an object", f, got[f])
		}
	}
	met, _ := got["targets_met"].(map[string]any)
	for _, k := range []string{"send_ro_one_core_per_s", "send_rw_vs_fsync", "telemetry_overhead_pct"} {
		if _, ok := met[k].(bool); !ok {
			t.Errorf("targets_met[%s] = %v, want a verdict", k, met[k])
		}
	}
	if notes, ok := got["notes"].([]any); !ok || len(notes) == 0 {
		t.Errorf("notes = %v, want some", got["notes"])
	}
	for _, want := range []string{"bench: send rw", "without telemetry"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
}

func TestVMTable(t *testing.T) {
	r := &vmBench{
		Sizes: fullVMBench, FsyncPerS: 1000, SendROPerS: 50_000, SendROOneCorePerS: 120_000,
		SendRWPerS: 2500, Targets: vmTargets,
		SendROOneCoreTelemetryPerS: 114_000, SendROOneCoreNoTelemetryPerS: 120_000, TelemetryOverheadPct: 5.5,
	}
	r.Sizes.ParallelSenders = 4
	r.conclude()
	var out bytes.Buffer
	if err := writeVMBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1000 /s", "≥ 100000 /s: met", "2500 /s = 2.50× fsync", "≥ 3.0× fsync: MISSED", "4 senders", "note: every send",
		"with telemetry (best of 8)", "without telemetry (best of 8)", "114000 /s", "5.5 %", "≤ 5 %: MISSED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkSendRO is bench vm's read-only send, one sender, in Update (as
// a server runs every send) and in View: go test -bench SendRO
// -benchmem -cpuprofile/-memprofile profiles the send path alone.
func BenchmarkSendRO(b *testing.B) {
	ctx := b.Context()
	db, err := openBenchImage(ctx, filepath.Join(b.TempDir(), "vm.db"), "bench")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	vb := &vmBencher{sizes: quickVMBench, log: io.Discard, res: &vmBench{}, db: db.DB}
	vb.vm = vm.New(&vm.Options{Telemetry: vm.NewTelemetry()})
	if err := vb.setup(ctx); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		run  func(context.Context, func(*image.Tx) error) error
	}{{"update", db.Update}, {"view", db.View}} {
		b.Run(c.name, func(b *testing.B) {
			send := vb.sendRO(c.run)
			b.ReportAllocs()
			for b.Loop() {
				if err := send(ctx, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
