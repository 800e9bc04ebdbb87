package image_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

// TestHostileUndoInit: undoing the transaction that created the root is
// refused with an UndoError, and changes nothing.
func TestHostileUndoInit(t *testing.T) {
	db := imagetest.Open(t, nil)
	init := db.Store().LastTID()
	_, err := db.Undo(ctx, init, "tester")
	var ue *store.UndoError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "root") {
		t.Errorf("undo of init: got %v, want an UndoError about the root", err)
	}
	if db.Store().LastTID() != init {
		t.Errorf("a refused undo committed")
	}
	// Still refused once the root has moved on (by the store this time).
	newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	if _, err := db.Undo(ctx, init, "tester"); !errors.Is(err, store.ErrUndo) {
		t.Errorf("undo of init after later changes: got %v, want ErrUndo", err)
	}
	err = db.View(ctx, func(tx *image.Tx) error { _, err := tx.Root(); return err })
	if err != nil {
		t.Errorf("root after refused undos: %v", err)
	}
}

// TestHostilePackBeforeFuture: a pack told to drop history before a time
// in the future must not make transactions committed after it
// un-undoable. The store records the cut as "packed-before" and refuses
// to undo any TID at or below it, so every commit until that date is
// refused. Pack should clamp the cut to the newest transaction it saw
// (or refuse a future time).
func TestHostilePackBeforeFuture(t *testing.T) {
	db := imagetest.Open(t, nil)
	oid := newObject(t, db, image.Slot{Name: "x", Value: image.Int(1)})
	if _, err := db.Pack(ctx, time.Now().AddDate(10, 0, 0)); err != nil {
		t.Logf("pack with a future time refused: %v", err)
	}
	tid := setSlot(t, db, oid, "x", image.Int(2))
	if _, err := db.Undo(ctx, tid, "tester"); err != nil {
		t.Errorf("undo of a transaction committed after the pack: %v", err)
	}
	if v := storedValue(t, db, oid, "x"); !image.Equal(v, image.Int(1)) {
		t.Errorf("x = %s after undo, want 1", image.Repr(v))
	}
}
