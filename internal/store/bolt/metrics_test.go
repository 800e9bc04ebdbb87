package bolt_test

import (
	"errors"
	"testing"

	"batos/internal/metrics/metricstest"
	"batos/internal/store"
	"batos/internal/store/storetest"
)

// TestMetricsCountCommits commits to a real store, once with a stale
// serial, and checks what the scrape says of commits and fsyncs.
func TestMetricsCountCommits(t *testing.T) {
	ctx := t.Context()
	db := opener()(t, "metrics")
	before := metricstest.Take(t)
	tid, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: store.RootOID, Data: storetest.Rec("one")}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: store.RootOID, Serial: tid, Data: storetest.Rec("two")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Commit(ctx, store.TxMeta{}, []store.Write{{OID: store.RootOID, Serial: tid, Data: storetest.Rec("stale")}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale commit: got %v, want a conflict", err)
	}
	d := metricstest.Take(t).Sub(before)
	for series, want := range map[string]float64{
		`batos_store_commits_total{outcome="ok"}`:       2,
		`batos_store_commits_total{outcome="conflict"}`: 1,
		`batos_store_commit_duration_seconds_count`:     2,
		`batos_store_wal_fsync_duration_seconds_count`:  2, // sequential commits: one fsync each
		`batos_store_wal_fsync_commits_sum`:             2,
	} {
		if got := d[series]; got != want {
			t.Errorf("%s moved by %v, want %v", series, got, want)
		}
	}
}
