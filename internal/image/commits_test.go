package image_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

// commitLog records what Options.OnCommit is told.
type commitLog struct {
	mu      sync.Mutex
	commits []image.Commit
}

func (l *commitLog) add(c image.Commit) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commits = append(l.commits, c)
}

func (l *commitLog) take() []image.Commit {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.commits
	l.commits = nil
	return c
}

// TestOnCommit: every commit is told once, after it is durable, with the
// OIDs it wrote as the log records them and its topic; an update that
// writes nothing, fails or is retried after a conflict is told no more
// than once; an undo is told with what it restored.
func TestOnCommit(t *testing.T) {
	var log commitLog
	db := imagetest.Open(t, &imagetest.Options{Image: &image.Options{OnCommit: log.add, User: "default"}})
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	log.take()

	// The transaction's topic wins over its context's.
	tctx := image.WithTopic(ctx, "commit.ctx", map[string]any{"from": "ctx"})
	tid, err := db.UpdateTID(tctx, func(tx *image.Tx) error {
		tx.SetTopic("commit.tx", map[string]any{"from": "tx"})
		tx.Note("set n")
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set("n", image.Int(1))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctxTID := setSlotCtx(t, db, tctx, oid, "n", image.Int(2))
	// Nothing written, and a failed update: nothing told.
	if err := db.Update(tctx, func(tx *image.Tx) error { _, err := tx.Object(oid); return err }); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = db.Update(tctx, func(tx *image.Tx) error {
		o, _ := tx.Object(oid)
		o.Set("n", image.Int(99))
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("failed update: got %v, want boom", err)
	}
	want := []image.Commit{
		{TID: tid, Meta: store.TxMeta{User: "default", Description: "set n"}, OIDs: []store.OID{oid}, Topic: "commit.tx", Fields: map[string]any{"from": "tx"}},
		{TID: ctxTID, Meta: store.TxMeta{User: "default"}, OIDs: []store.OID{oid}, Topic: "commit.ctx", Fields: map[string]any{"from": "ctx"}},
	}
	if diff := cmp.Diff(log.take(), want); diff != "" {
		t.Errorf("commits told (-got +want):\n%s", diff)
	}
	checkAgainstLog(t, db, want)

	// An undo under a topic, with the objects it restored.
	undo, err := db.Undo(image.WithTopic(ctx, "commit.undo", map[string]any{"undone": ctxTID.String()}), ctxTID, "")
	if err != nil {
		t.Fatal(err)
	}
	got := log.take()
	want = []image.Commit{{TID: undo, Meta: store.TxMeta{User: "default", Description: "undo " + ctxTID.String(), Extension: map[string]string{"undo": ctxTID.String()}},
		OIDs: []store.OID{oid}, Topic: "commit.undo", Fields: map[string]any{"undone": ctxTID.String()}}}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("undo told (-got +want):\n%s", diff)
	}
	checkAgainstLog(t, db, want)
	// A refused undo commits nothing and tells nothing.
	if _, err := db.Undo(ctx, ctxTID, ""); err == nil {
		t.Fatal("second undo: got nil, want an error")
	}
	if got := log.take(); len(got) != 0 {
		t.Errorf("a refused undo was told: %+v", got)
	}
}

// TestOnCommitConflicts: updates rerun after write conflicts are each told
// exactly once, under their TID.
func TestOnCommitConflicts(t *testing.T) {
	var log commitLog
	db := imagetest.Open(t, &imagetest.Options{Image: &image.Options{OnCommit: log.add, MaxRetries: 1000}})
	oid := newObject(t, db, image.Slot{Name: "n", Value: image.Int(0)})
	log.take()
	const n = 32
	tids := make(chan store.TID, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
				o, err := tx.Object(oid)
				if err != nil {
					return err
				}
				v, _ := o.Get("n")
				return o.Set("n", v.(image.Int)+1)
			})
			if err != nil {
				t.Error(err)
			}
			tids <- tid
		})
	}
	wg.Wait()
	close(tids)
	told := map[store.TID]int{}
	for _, c := range log.take() {
		told[c.TID]++
	}
	for tid := range tids {
		if told[tid] != 1 {
			t.Errorf("%s told %d times, want 1", tid, told[tid])
		}
		delete(told, tid)
	}
	if len(told) != 0 {
		t.Errorf("told of commits no update made: %v", told)
	}
}

// setSlotCtx is setSlot under ctx.
func setSlotCtx(t testing.TB, db *image.DB, c context.Context, oid store.OID, name string, v image.Value) store.TID {
	t.Helper()
	tid, err := db.UpdateTID(c, func(tx *image.Tx) error {
		o, err := tx.Object(oid)
		if err != nil {
			return err
		}
		return o.Set(name, v)
	})
	if err != nil {
		t.Fatalf("set %s.%s: %v", oid, name, err)
	}
	return tid
}

// checkAgainstLog: what was told is what the log records.
func checkAgainstLog(t testing.TB, db *image.DB, told []image.Commit) {
	t.Helper()
	for _, c := range told {
		info, err := db.Store().Transaction(ctx, c.TID)
		if err != nil {
			t.Fatalf("log of %s: %v", c.TID, err)
		}
		if diff := cmp.Diff(info.OIDs, c.OIDs); diff != "" {
			t.Errorf("%s: OIDs told differ from the log's (-log +told):\n%s", c.TID, diff)
		}
		if info.User != c.Meta.User || info.Description != c.Meta.Description {
			t.Errorf("%s: told %q/%q, log has %q/%q", c.TID, c.Meta.User, c.Meta.Description, info.User, info.Description)
		}
	}
}
