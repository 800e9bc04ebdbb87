package bench

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// benchFields are the figures bench store must report, each positive.
var benchFields = []string{
	"fsync_per_s", "single_tx_per_s", "concurrent8_tx_per_s",
	"bulk100k_s", "bulk_bytes_per_object", "coldload100k_s",
	"history100_ms", "undo_ms", "open1m_ms",
	"single_vs_fsync", "concurrent8_vs_fsync",
}

// TestStoreQuick runs the benchmark at its tiny sizes, with this test
// binary as the cold-load child (see TestMain). It checks the shape of
// the output only: timing never fails a test.
func TestStoreQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	opts := &Options{Quick: true, JSON: true, Dir: t.TempDir(), Exe: exe}
	if err := RunStore(t.Context(), opts, &stdout, &stderr); err != nil {
		t.Fatalf("RunStore: %v\nstderr: %s", err, stderr.String())
	}
	got := decodeOneObject(t, stdout.Bytes())
	for _, f := range benchFields {
		v, ok := got[f].(float64)
		if !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, got[f])
		}
	}
	for _, f := range []string{"targets", "targets_met", "zodb_reference"} {
		if m, ok := got[f].(map[string]any); !ok || len(m) == 0 {
			t.Errorf("%s = %v, want an object", f, got[f])
		}
	}
	if !strings.Contains(stderr.String(), "bench: coldload") {
		t.Errorf("stderr shows no progress of the cold load:\n%s", stderr.String())
	}
}

func TestStoreNoExe(t *testing.T) {
	if err := RunStore(t.Context(), &Options{Dir: t.TempDir()}, io.Discard, io.Discard); !errors.Is(err, ErrNoExe) {
		t.Errorf("RunStore without Exe: got %v, want ErrNoExe", err)
	}
}

func TestStoreTable(t *testing.T) {
	r := &storeBench{
		Sizes: fullBench, FsyncPerS: 1000, SingleTxPerS: 500, Concurrent8TxPerS: 2000,
		Concurrent8FsyncPerS: [2]float64{600, 800},
		Targets:              storeTargets, ZODB: zodbFigures, Notes: []string{"a note"},
	}
	r.conclude()
	var out bytes.Buffer
	if err := writeBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1000 /s", "500 tx/s = 0.50× fsync", "2000 tx/s = 2.50× fsync", "600 / 800 /s", "100000 objects", "≥ 3.0× fsync: MISSED", "note: a note"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}
