package image_test

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"batos/internal/image"
	"batos/internal/image/imagetest"
	"batos/internal/store"
)

// changesIn runs fn in an Update that is rolled back and returns what
// Changes said after it.
func changesIn(t *testing.T, db *image.DB, fn func(tx *image.Tx) error) []image.Change {
	t.Helper()
	var out []image.Change
	stop := errors.New("rolled back")
	err := db.Update(ctx, func(tx *image.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		var err error
		out, err = tx.Changes()
		if err != nil {
			return err
		}
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	return out
}

// changedOIDs are the OIDs a list of changes names, with whether each
// was created.
func changedOIDs(cs []image.Change) map[store.OID]bool {
	out := map[store.OID]bool{}
	for _, c := range cs {
		out[c.OID] = c.Created
	}
	return out
}

// TestChangesReportsWhatCommitWouldWrite: loaded objects whose values
// were handed out but not changed are not reported; an object created
// and left empty is; a container changed in place inside a slot is,
// with its state before and after; setting a slot to the value it holds
// is not a change.
func TestChangesReportsWhatCommitWouldWrite(t *testing.T) {
	db := imagetest.Open(t, nil)
	a := newObject(t, db, image.Slot{Name: "xs", Value: image.NewList(image.Int(1))}, image.Slot{Name: "n", Value: image.Int(3)})
	b := newObject(t, db, image.Slot{Name: "d", Value: &image.Dict{}})

	t.Run("loaded, read, unchanged", func(t *testing.T) {
		cs := changesIn(t, db, func(tx *image.Tx) error {
			for _, oid := range []store.OID{a, b} {
				o, err := tx.Object(oid)
				if err != nil {
					return err
				}
				o.Slots() // every container handed out as the transaction's copy
			}
			o, _ := tx.Object(a)
			return o.Set("n", image.Int(3))
		})
		if len(cs) != 0 {
			t.Fatalf("got %d changes, want none: %+v", len(cs), cs)
		}
	})
	t.Run("created and left empty", func(t *testing.T) {
		var fresh store.OID
		cs := changesIn(t, db, func(tx *image.Tx) error {
			o, err := tx.New()
			fresh = o.OID()
			return err
		})
		if got, want := changedOIDs(cs), map[store.OID]bool{fresh: true}; !cmp.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
		if len(cs[0].After) != 0 || cs[0].Before != nil {
			t.Fatalf("an empty new object: %+v", cs[0])
		}
	})
	t.Run("container changed in place", func(t *testing.T) {
		cs := changesIn(t, db, func(tx *image.Tx) error {
			o, err := tx.Object(a)
			if err != nil {
				return err
			}
			v, _ := o.Get("xs")
			l := v.(*image.List)
			l.Elems = append(l.Elems, image.Int(2))
			return nil
		})
		if got, want := changedOIDs(cs), map[store.OID]bool{a: false}; !cmp.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
		before, _ := slotOf(cs[0].Before, "xs")
		after, _ := slotOf(cs[0].After, "xs")
		if !image.Equal(before, image.NewList(image.Int(1))) || !image.Equal(after, image.NewList(image.Int(1), image.Int(2))) {
			t.Fatalf("xs before %s, after %s", image.Repr(before), image.Repr(after))
		}
	})
	t.Run("slot deleted", func(t *testing.T) {
		cs := changesIn(t, db, func(tx *image.Tx) error {
			o, err := tx.Object(b)
			if err != nil {
				return err
			}
			_, err = o.Delete("d")
			return err
		})
		if got, want := changedOIDs(cs), map[store.OID]bool{b: false}; !cmp.Equal(got, want) {
			t.Fatalf("changes %v, want %v", got, want)
		}
		if len(cs[0].After) != 0 || len(cs[0].Before) != 1 {
			t.Fatalf("a deleted slot: %+v", cs[0])
		}
	})
}

func slotOf(slots []image.Slot, name string) (image.Value, bool) {
	for _, s := range slots {
		if s.Name == name {
			return s.Value, true
		}
	}
	return nil, false
}

// TestChangesInAViewIsNothing: a read-only transaction writes nothing,
// so Changes reports nothing, whatever it loaded and read.
func TestChangesInAViewIsNothing(t *testing.T) {
	db := imagetest.Open(t, nil)
	a := newObject(t, db, image.Slot{Name: "xs", Value: image.NewList(image.Int(1))})
	err := db.View(ctx, func(tx *image.Tx) error {
		o, err := tx.Object(a)
		if err != nil {
			return err
		}
		o.Slots()
		if _, err := tx.Root(); err != nil {
			return err
		}
		cs, err := tx.Changes()
		if err != nil {
			return err
		}
		if len(cs) != 0 {
			t.Errorf("a view reports %d changes, want none: %+v", len(cs), changedOIDs(cs))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestRehearseSeesItsSnapshotAndSavesNothing: a rehearsal is a writable
// transaction on the snapshot it is given, even after later commits; its
// changes are seen by it and by Changes, and never saved.
func TestRehearseSeesItsSnapshotAndSavesNothing(t *testing.T) {
	db := imagetest.Open(t, nil)
	a := newObject(t, db, image.Slot{Name: "n", Value: image.Int(1)})
	at := db.Store().LastTID()
	setSlot(t, db, a, "n", image.Int(2))
	for range 2 {
		err := db.Rehearse(ctx, at, func(tx *image.Tx) error {
			if tx.Snapshot() != at || !tx.Writable() {
				t.Errorf("rehearsal at %s (writable %v), want at %s, writable", tx.Snapshot(), tx.Writable(), at)
			}
			o, err := tx.Object(a)
			if err != nil {
				return err
			}
			if v, _ := o.Get("n"); !image.Equal(v, image.Int(1)) {
				t.Errorf("the rehearsal sees n = %s, want the snapshot's 1", image.Repr(v))
			}
			if err := o.Set("n", image.Int(7)); err != nil {
				return err
			}
			if _, err := tx.New(image.Slot{Name: "m", Value: image.Int(1)}); err != nil {
				return err
			}
			cs, err := tx.Changes()
			if err != nil {
				return err
			}
			if len(cs) != 2 {
				t.Errorf("the rehearsal's changes: %+v, want n set and a new object", cs)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if v := storedValue(t, db, a, "n"); !image.Equal(v, image.Int(2)) {
		t.Fatalf("after the rehearsals n = %s, want 2: a rehearsal saved its changes", image.Repr(v))
	}
}
