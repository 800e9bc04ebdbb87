package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
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
	db, vb := sendROBench(b)
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

func TestVMTableAnchor(t *testing.T) {
	r := &vmBench{Sizes: fullVMBench, FsyncPerS: 1000, Targets: vmTargets,
		Anchor: &vmAnchor{Python: DefaultPython, Rounds: 3, SeedPerS: 200_000, BatosPerS: 300_000, Ratio: 1.5}}
	r.conclude()
	var out bytes.Buffer
	if err := writeVMBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"the seed's send, Python, in memory (best of 3)", "200000 /s", "300000 /s", "ratio batos / seed", "1.50×", "≥ 1.0×: met", "note: the anchor is the seed's own message send"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestParseSeedRate(t *testing.T) {
	for _, tt := range []struct {
		name string
		out  string
		want float64 // 0: an error
	}{
		{"the script's line", `{"seed_send_ro_per_s": 231000, "n": 300000, "python": "3.11.2"}` + "\n", 231000},
		{"no rate", `{"n": 300000}`, 0},
		{"zero", `{"seed_send_ro_per_s": 0}`, 0},
		{"not JSON", "Traceback (most recent call last):", 0},
		{"nothing", "", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseSeedRate([]byte(tt.out))
			if tt.want == 0 {
				if !errors.Is(err, errNoSeedRate) {
					t.Errorf("got %v, %v; want errNoSeedRate", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestSeedRunner runs the script -anchor-script names, with the anchor's
// Python; the seed script itself runs in cmd/batos's TestBenchVMAnchor.
func TestSeedRunner(t *testing.T) {
	requireSeedPython(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "fake.py")
	if err := os.WriteFile(script, []byte("import sys, json\nprint(json.dumps({'seed_send_ro_per_s': int(sys.argv[1]) * 2}))\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := newSeedRunner(t.Context(), DefaultPython, script, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.rate(t.Context(), 21); err != nil || got != 42 {
		t.Errorf("rate = %v, %v; want 42", got, err)
	}
	if _, err := newSeedRunner(t.Context(), filepath.Join(dir, "no-python"), "", dir); err == nil || !strings.Contains(err.Error(), "python3-persistent") {
		t.Errorf("with no Python: got %v, want an error naming python3-persistent", err)
	}
}

// requireSeedPython skips, saying why, unless the anchor's Python and
// its persistent module are installed (make deps-test installs them).
func requireSeedPython(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(DefaultPython); err != nil {
		t.Skipf("no %s to run the seed's send", DefaultPython)
	}
	if out, err := exec.Command(DefaultPython, "-c", "import persistent").CombinedOutput(); err != nil {
		t.Skipf("%s lacks the persistent module (apt-get install python3-persistent): %v: %s", DefaultPython, err, out)
	}
}

// sendROBench is bench vm's image and bencher, set up as for its
// read-only send, for a benchmark.
func sendROBench(b *testing.B) (*benchImage, *vmBencher) {
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
	return db, vb
}

// BenchmarkSendROParallel is the read-only send from every core at once:
// -mutexprofile shows what the senders contend for.
func BenchmarkSendROParallel(b *testing.B) {
	ctx := b.Context()
	db, vb := sendROBench(b)
	send := vb.sendRO(db.Update)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := send(ctx, 0); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
