package image_test

import (
	"testing"

	"batos/internal/image"
	"batos/internal/store"
)

// storedSlots decodes oid's current record straight from the store,
// bypassing the image's cache.
func storedSlots(t testing.TB, db *image.DB, oid store.OID) []image.Slot {
	t.Helper()
	rec, err := db.Store().Load(ctx, oid)
	if err != nil {
		t.Fatal(err)
	}
	slots, err := image.DecodeState(rec.Data)
	if err != nil {
		t.Fatal(err)
	}
	return slots
}

func storedValue(t testing.TB, db *image.DB, oid store.OID, name string) image.Value {
	t.Helper()
	for _, s := range storedSlots(t, db, oid) {
		if s.Name == name {
			return s.Value
		}
	}
	t.Fatalf("%s has no slot %q in the store", oid, name)
	return nil
}

func setSlot(t testing.TB, db *image.DB, oid store.OID, name string, v image.Value) store.TID {
	t.Helper()
	tid, err := db.UpdateTID(ctx, func(tx *image.Tx) error {
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
