package image_test

import (
	"context"
	"testing"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

// lagging is a store whose LastTID lags behind what was committed, as a
// database node's does until another node's notice arrives; LatestTID
// asks the store itself.
type lagging struct {
	store.Engine
	stale store.TID
}

func (l *lagging) LastTID() store.TID { return l.stale }

func (l *lagging) LatestTID(ctx context.Context) (store.TID, error) { return l.Engine.LastTID(), nil }

// TestTransactionsBeginAtTheLatestCommit: over a store other processes
// commit to, a transaction begins at the store's newest commit, not at
// the last one this process heard of: another node's commit is seen by
// the next read, and a write based on it does not conflict.
func TestTransactionsBeginAtTheLatestCommit(t *testing.T) {
	db := imagetest.Open(t, nil)
	set := func(db *image.DB, v int64) {
		t.Helper()
		if err := db.Update(ctx, func(tx *image.Tx) error {
			root, err := tx.Root()
			if err != nil {
				return err
			}
			return root.Set("n", image.Int(v))
		}); err != nil {
			t.Fatal(err)
		}
	}
	set(db, 1)
	behind := &lagging{Engine: db.Store(), stale: db.Store().LastTID()}
	set(db, 2) // "another node" commits; this one has not heard of it
	other := image.New(behind, nil)
	var got image.Value
	if err := other.View(ctx, func(tx *image.Tx) error {
		root, err := tx.Root()
		if err != nil {
			return err
		}
		got, _ = root.Get("n")
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got != image.Int(2) {
		t.Errorf("a read after another node's commit saw n = %v, want 2", got)
	}
	set(other, 3) // based on the newest revision: no conflict to retry
	if m := behind.LastTID(); m != behind.stale {
		t.Fatalf("the lagging store moved: %s", m)
	}
}
