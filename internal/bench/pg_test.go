package bench

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestPGNeedsDatabaseAndExe(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *PGOptions
		want error
	}{
		{"nil", nil, ErrNoStore},
		{"file", &PGOptions{Store: "image.db", Options: Options{Exe: "batos"}}, ErrNoStore},
		{"no exe", &PGOptions{Store: "postgres://127.0.0.1:1/x"}, ErrNoExe},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := RunPG(t.Context(), tc.opts, io.Discard, io.Discard); !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestPGTable(t *testing.T) {
	r := &pgBench{
		Database: "postgres://h/db", Schema: "batos_bench_x", Server: "15", Sizes: fullPGBench,
		Raw1TxPerS: 4000, RawTxPerS: 8000, CommitTxPerS: 600, Commit10TxPerS: 500,
		Nodes1TxPerS: 400, NodesNTxPerS: 500, EventP50Ms: -0.2, EventP90Ms: 0.8,
		SendToEventP50Ms: 5, SendToEventP90Ms: 7, ReplyP50Ms: 4.5, Targets: pgTargets,
	}
	r.conclude()
	var out bytes.Buffer
	if err := writePGBenchTable(&out, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"8000 tx/s", "600 tx/s  ", "0.07× raw", "≥ 0.5× raw: MISSED", "1.25× 1 node", "p50 -0.20 ms, p90 0.80 ms", "note: raw"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestWithSearchPath(t *testing.T) {
	got, err := withSearchPath("postgres://u:p@h:5/db?sslmode=disable&search_path=old", "batos_bench_1")
	if err != nil {
		t.Fatal(err)
	}
	if want := "postgres://u:p@h:5/db?search_path=batos_bench_1&sslmode=disable"; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
