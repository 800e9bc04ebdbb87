package bench

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"batos/internal/store"
)

// TestCatalogSmall runs the benchmark on a catalog of a few hundred
// chunks. It checks the shape and the sense of the output only: timing
// never fails a test.
func TestCatalogSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the benchmark")
	}
	var stdout, stderr bytes.Buffer
	opts := &Options{JSON: true, Chunks: 650, Dir: t.TempDir()}
	if err := RunCatalog(t.Context(), opts, &stdout, &stderr); err != nil {
		t.Fatalf("RunCatalog: %v\nstderr: %s", err, stderr.String())
	}
	got := decodeOneObject(t, stdout.Bytes())
	for _, f := range []string{
		"fsync_per_s", "prepare_chunks_per_s", "image_write_chunks_per_s", "index_build_chunks_per_s",
		"ingest_chunks_per_s", "image_bytes_per_chunk", "index_bytes_per_chunk", "recall_at_10",
		"hybrid_speedup_vs_scan", "index_open_ms", "index_rebuild_s", "heap_mb_after_open",
	} {
		if v, ok := got[f].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, got[f])
		}
	}
	for _, f := range []string{"search_text_ms", "search_vector_ms", "search_hybrid_index_ms", "search_hybrid_ms", "scan_ms"} {
		m, _ := got[f].(map[string]any)
		p50, _ := m["p50"].(float64)
		p99, _ := m["p99"].(float64)
		if p50 <= 0 || p99 < p50 {
			t.Errorf("%s = %v, want 0 < p50 <= p99", f, got[f])
		}
	}
	cpu, _ := got["cpu_s"].(map[string]any)
	for _, k := range []string{"prepare", "image_write", "index_build", "scan", "index_rebuild", "run"} {
		if v, ok := cpu[k].(float64); !ok || v < 0 {
			t.Errorf("cpu_s[%s] = %v, want a number ≥ 0", k, cpu[k])
		}
	}
	if got["chunks"] != 650.0 || got["documents"] != 7.0 || got["transactions"] != 2.0 {
		t.Errorf("chunks, documents, transactions = %v, %v, %v; want 650, 7, 2", got["chunks"], got["documents"], got["transactions"])
	}
	// Below the index's graph, vector search is exact; over it, at this
	// size, it finds nearly everything.
	if r, _ := got["recall_at_10"].(float64); r < 0.9 || r > 1 {
		t.Errorf("recall_at_10 = %v, want 0.9 to 1", r)
	}
	met, _ := got["targets_met"].(map[string]any)
	for _, k := range []string{"search_hybrid_ms_p50", "recall_at_10", "hybrid_speedup_vs_scan"} {
		if _, ok := met[k].(bool); !ok {
			t.Errorf("targets_met[%s] = %v, want a verdict", k, met[k])
		}
	}
	if notes, ok := got["notes"].([]any); !ok || len(notes) == 0 {
		t.Errorf("notes = %v, want some", got["notes"])
	}
	for _, want := range []string{"bench: ingest", "bench: search", "bench: recall", "bench: scan", "bench: reopen"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr shows no %q:\n%s", want, stderr.String())
		}
	}
}

func TestCatalogTable(t *testing.T) {
	r := &catalogBench{
		Chunks: 100_000, Documents: 1000, Transactions: 250, DocsPerTx: 4, Topics: 200, Dims: 384, K: 10,
		Hybrid: latencyMs{P50: 12.5, P99: 40}, Recall10: 0.97, Scan: latencyMs{P50: 2500, P99: 3000}, Speedup: 200,
		OpenMs: 500, ReindexS: 60, CPUs: 2, LoadStart: 1.5, LoadEnd: 2.5,
		CPUS: map[string]float64{"index_build": 40, "run": 200}, Targets: catalogTargets,
	}
	r.conclude()
	if r.TargetsMet["search_hybrid_ms_p50"] || !r.TargetsMet["recall_at_10"] || !r.TargetsMet["hybrid_speedup_vs_scan"] {
		t.Errorf("verdicts %v, want the hybrid p50 missed and the others met", r.TargetsMet)
	}
	var out bytes.Buffer
	if err := writeCatalogBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"catalog of 100000 chunks in 1000 documents", "12.50 / 40.00 ms", "p50 < 10 ms: MISSED",
		"0.9700", "≥ 0.95: met", "200×", "≥ 50×: met", "60.0 s = 120× the open", "load average was 1.50",
		"note: the scan is the baseline",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

// TestCatalogBaselines checks the pieces of the two references: the scan's
// terms and ranking, and the exact nearest neighbours.
func TestCatalogBaselines(t *testing.T) {
	if got := scanTerms("What does the zorak Zorak mil in the system"); !slices.Equal(got, []string{"zorak", "mil"}) {
		t.Errorf("scanTerms = %q, want [zorak mil]", got)
	}
	var best []scanHit
	for _, h := range []scanHit{{5, 1}, {3, 4}, {9, 4}, {1, 2}, {7, 1}} {
		best = keepBest(best, h, 3)
	}
	if want := []scanHit{{3, 4}, {9, 4}, {1, 2}}; !slices.Equal(best, want) {
		t.Errorf("keepBest kept %v, want %v", best, want)
	}
	// Unit vectors of 5 components at angles 0, 30, 60, 90 degrees from
	// the query in one plane.
	vecs := []float32{
		0, 1, 0, 0, 0,
		0, 0.866, 0.5, 0, 0,
		0, 0.5, 0.866, 0, 0,
		0, 0, 1, 0, 0,
	}
	keys := []store.OID{40, 30, 20, 10}
	q := [][]float32{{0, 0, 1, 0, 0}, {0, 1, 0, 0, 0}}
	got := exactNearest(vecs, keys, 5, q, 2)
	if want := [][]store.OID{{10, 20}, {40, 30}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("exactNearest = %v, want %v", got, want)
	}
}
