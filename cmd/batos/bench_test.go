package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
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

// TestBenchStoreQuick runs the benchmark at its tiny sizes, with the
// cold-load child run by a batos binary built for the test. It checks the
// shape of the output only: timing never fails a test.
func TestBenchStoreQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds batos and runs the benchmark")
	}
	exe := buildBenchBinary(t)
	var stdout, stderr bytes.Buffer
	args := []string{"bench", "store", "-quick", "-json", "-dir", t.TempDir(), "-exe", exe}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("batos %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr.String())
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

func TestBenchUsage(t *testing.T) {
	for _, args := range [][]string{{"bench"}, {"bench", "nosuch"}, {"bench", "store", "extra"}} {
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), args, &stdout, &stderr); code != 2 {
			t.Errorf("batos %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
}

func TestBenchTable(t *testing.T) {
	r := &storeBench{
		Sizes: fullBench, FsyncPerS: 1000, SingleTxPerS: 500, Concurrent8TxPerS: 2000,
		Targets: storeTargets, ZODB: zodbFigures, Notes: []string{"a note"},
	}
	r.conclude()
	var out bytes.Buffer
	if err := writeBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1000 /s", "500 tx/s = 0.50× fsync", "100000 objects", "≥ 3.0× fsync: MISSED", "note: a note"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// buildBenchBinary builds batos into a temporary directory: the test
// binary cannot serve as the cold-load child.
func buildBenchBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go command to build batos with: %v", err)
	}
	exe := filepath.Join(t.TempDir(), "batos")
	if out, err := exec.Command(goTool, "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return exe
}

// decodeOneObject decodes b as exactly one JSON object.
func decodeOneObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("decode output: %v\n%s", err, b)
	}
	if err := dec.Decode(new(any)); !errors.Is(err, io.EOF) {
		t.Fatalf("output has more than one JSON value (%v):\n%s", err, b)
	}
	return m
}
