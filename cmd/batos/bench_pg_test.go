package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"batos/internal/store/pg/pgtest"
)

// TestBenchPGQuick runs "batos bench pg -quick" against a test database,
// its nodes run by a batos binary built for the test, and checks that
// every figure is there and sane, and that nothing is left behind: not
// the scratch schemas, not the nodes' files. Timing never fails a test.
func TestBenchPGQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds batos and runs the benchmark")
	}
	exe := batosBinary(t)
	url, dir := pgtest.NewDatabase(t), t.TempDir()
	var stdout, stderr bytes.Buffer
	args := []string{"-store", url, "bench", "pg", "-quick", "-json", "-dir", dir, "-exe", exe}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("batos %s: exit %d\nstderr: %s", strings.Join(args, " "), code, stderr.String())
	}
	var got map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &got); err != nil {
		t.Fatalf("output is not one JSON object: %v\n%s", err, stdout.String())
	}
	for _, f := range []string{
		"raw1_tx_per_s", "raw_tx_per_s", "commit_tx_per_s", "commit10_tx_per_s", "commit_vs_raw",
		"nodes1_tx_per_s", "nodesN_tx_per_s", "nodesN_vs_1",
		"a_send_to_b_event_p50_ms", "a_send_to_b_event_p90_ms", "a_reply_p50_ms",
	} {
		if v, ok := got[f].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v, want a positive number", f, got[f])
		}
	}
	// From A's reply to B's event is negative when the event is first.
	for _, f := range []string{"a_to_b_event_p50_ms", "a_to_b_event_p90_ms"} {
		if _, ok := got[f].(float64); !ok {
			t.Errorf("%s = %v, want a number", f, got[f])
		}
	}
	if m, ok := got["targets_met"].(map[string]any); !ok || len(m) == 0 {
		t.Errorf("targets_met = %v, want the verdicts", got["targets_met"])
	}
	if got["quick"] != true {
		t.Errorf("quick = %v, want true", got["quick"])
	}
	for _, want := range []string{"bench: raw", "bench: commit", "starting node 3", "bench: latency", "dropping the schemas"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr shows no %q:\n%s", want, stderr.String())
		}
	}

	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var left int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'batos_bench_%'").Scan(&left); err != nil || left != 0 {
		t.Errorf("scratch schemas left in the database: %d (%v), want 0", left, err)
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("left in -dir: %v (%v), want nothing", entries, err)
	}
}

// TestBenchPGWantsADatabase: bench pg measures a PostgreSQL database,
// never an image file.
func TestBenchPGWantsADatabase(t *testing.T) {
	code, _, errOut := batos(t, "-image", "x.db", "bench", "pg", "-quick")
	if code == 0 || !strings.Contains(errOut, "PostgreSQL") {
		t.Errorf("bench pg on an image file: exit %d, %q", code, errOut)
	}
}
