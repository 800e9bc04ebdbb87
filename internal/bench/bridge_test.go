package bench

import (
	"bytes"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"batos/internal/zmqbridge"
)

// benchBridgeFields are the figures bench bridge must report, each positive.
var benchBridgeFields = []string{
	"echo1_per_s", "echo1_p50_ms", "echo1_p99_ms",
	"echo8_per_s", "echo8_p50_ms", "echo8_p99_ms",
	"send1_per_s", "send1_p50_ms", "send1_p99_ms",
	"send8_per_s", "send8_p50_ms", "send8_p99_ms",
	"in_process_send_ro_one_core_per_s", "in_process_rounds",
	"echo_per_s", "send_per_s", "send_vs_echo", "send_vs_in_process",
}

// TestBridgeQuick runs the benchmark for a fraction of a second per
// phase. It checks the shape of the output only: timing never fails a test.
func TestBridgeQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	var stdout, stderr bytes.Buffer
	opts := &Options{Quick: true, JSON: true, Dir: t.TempDir()}
	if err := RunBridge(t.Context(), opts, &stdout, &stderr); err != nil {
		t.Fatalf("RunBridge: %v\nstderr: %s", err, stderr.String())
	}
	got := decodeOneObject(t, stdout.Bytes())
	for _, f := range benchBridgeFields {
		v, ok := got[f].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, got[f])
		}
	}
	for _, f := range []string{"sizes", "targets", "targets_met"} {
		if m, ok := got[f].(map[string]any); !ok || len(m) == 0 {
			t.Errorf("%s = %v, want an object", f, got[f])
		}
	}
	met, _ := got["targets_met"].(map[string]any)
	for _, k := range []string{"send_vs_echo", "send_vs_in_process"} {
		if _, ok := met[k].(bool); !ok {
			t.Errorf("targets_met[%s] = %v, want a verdict", k, met[k])
		}
	}
	if notes, ok := got["notes"].([]any); !ok || len(notes) == 0 {
		t.Errorf("notes = %v, want some", got["notes"])
	}
	if !strings.Contains(stderr.String(), "bench: send: 8 client(s)") {
		t.Errorf("stderr shows no progress of the sends from 8 clients:\n%s", stderr.String())
	}
}

func TestBridgeTable(t *testing.T) {
	r := &bridgeBench{
		Sizes: fullBridgeBench, Targets: bridgeTargets,
		Echo1PerS: 40_000, Echo8PerS: 50_000, Send1PerS: 20_000, Send8PerS: 30_000,
		Send8P50Ms: 3.25, Send8P99Ms: 7.5, InProcessPerS: 60_000, InProcessRounds: 2,
	}
	r.conclude()
	if r.SendVsEcho != 0.6 {
		t.Errorf("send_vs_echo = %v, want 0.6 (best send / best echo)", r.SendVsEcho)
	}
	if r.SendVsInProcess != 0.5 {
		t.Errorf("send_vs_in_process = %v, want 0.5 (best send / in-process send)", r.SendVsInProcess)
	}
	var out bytes.Buffer
	if err := writeBridgeBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"100 in flight", "bridge send, 8 clients", "3.250 ms", "7.500 ms", "send 30000 /s = 0.60× echo 50000 /s; target ≥ 0.5×: met",
		"in-process send, 1 core (best of 2)", "send 30000 /s = 0.50× in-process send 60000 /s; target ≥ 0.7×: MISSED",
		"note: every phase", "note: in_process_send_ro_one_core_per_s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// BenchmarkBridgeSend is bench bridge's send phase, one client, 100 in
// flight, b.N sends: go test -bench BridgeSend -benchmem
// -cpuprofile/-memprofile profiles the bridge's path (the client's share
// is in the profile too: it is the same process, as in bench bridge).
func BenchmarkBridgeSend(b *testing.B) {
	bb := &bridgeBencher{sizes: quickBridgeBench, log: io.Discard, res: &bridgeBench{}}
	addr, stop, err := bb.serve(b.Context(), filepath.Join(b.TempDir(), "bridge.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	res, err := zmqbridge.Load{Addr: addr, Clients: 1, InFlight: fullBridgeBench.InFlight,
		Request: benchBridgeSend, Requests: b.N}.Run(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	cpu := processCPU() - cpu0
	if res.RoundTrips != b.N {
		b.Fatalf("got %d round trips, want %d", res.RoundTrips, b.N)
	}
	b.ReportMetric(res.PerS(), "sends/s")
	b.ReportMetric(float64(res.Quantile(0.5).Microseconds()), "p50-µs")
	// The process's CPU, every thread's: libzmq's I/O thread too, which
	// a Go CPU profile misses.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
}
